"""Hostile submissions: each gets its exact verdict, and the host is left untouched.

Small N and small limits come from the evaluator's own options, so the suite stays fast.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from evaluator.pipeline import EvaluationOptions
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import bubblewrap
from evaluator.submission import SubmissionOptions, evaluate_submission

N = 10
pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap (bwrap) is not installed")

# Prepended to every hostile script: writes the N valid digits a well-behaved script would.
PRELUDE = textwrap.dedent(f"""
    import os, sys, time, socket, signal
    import numpy as np
    from PIL import Image
    N = int(os.environ.get("EVAL_NUM_SAMPLES", "{N}"))
    def write_samples(count=N, size=(28, 28), mode="L"):
        os.makedirs("samples", exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(count):
            shape = (size[1], size[0]) + ((len(mode),) if len(mode) > 1 else ())
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode if len(mode) > 1 else None).save(f"samples/{{i}}.png")
""")


@pytest.fixture(scope="module")
def host(tmp_path_factory, mnist_root, cache_dir):
    """Host places a submission must not see or change (the reference cache is warmed first:
    computing it is the evaluator's own legitimate write)."""
    from evaluator.features import make_extractor
    from evaluator.reference import load_reference

    load_reference(make_extractor("mnist"), mnist_root, cache_dir)
    secret_dir = tmp_path_factory.mktemp("host-secrets")
    (secret_dir / "token.txt").write_text("top secret")
    results_dir = tmp_path_factory.mktemp("results")
    (results_dir / "result.json").write_text('{"real": true}')
    return {"secret_dir": secret_dir, "results_dir": results_dir, "mnist_root": Path(mnist_root),
            "cache_dir": Path(cache_dir)}


def snapshot(host) -> dict:
    state = {}
    for key in ("secret_dir", "results_dir", "cache_dir"):
        for path in sorted(Path(host[key]).rglob("*")):
            if path.is_file():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted((host["mnist_root"] / "MNIST" / "raw").iterdir()):
        info = path.stat()
        state[str(path)] = (info.st_size, info.st_mtime_ns)
    return state


@pytest.fixture
def run(tmp_path, host, mnist_root, cache_dir):
    def run_script(body: str, *, limits: Limits | None = None, extra=None, prelude: bool = True,
                   gpu: bool = False):
        folder = tmp_path / "team"
        folder.mkdir(exist_ok=True)
        script = (PRELUDE if prelude else "") + textwrap.dedent(body)
        script = script.replace("HOST_SECRET", str(host["secret_dir"]))
        script = script.replace("HOST_RESULTS", str(host["results_dir"]))
        script = script.replace("HOST_MNIST", str(host["mnist_root"]))
        script = script.replace("HOST_CACHE", str(host["cache_dir"]))
        (folder / "generate.py").write_text(script)
        (folder / "requirements.txt").write_text("numpy\npillow\n")
        if extra:
            extra(folder)
        before = snapshot(host)
        options = EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                    metrics=("fid",))
        limits = limits or Limits(timeout_s=20, memory_bytes=400 << 20, pids=64,
                                  samples_max_bytes=8 << 20, samples_max_files=100,
                                  tmp_bytes=16 << 20, max_file_bytes=8 << 20)
        result, log, _ = evaluate_submission(folder, options, SubmissionOptions(
            batch_size=64, limits=limits, rule_check=False))
        assert snapshot(host) == before, "host files changed"
        return result, log

    return run_script


def problem_codes(result) -> set[str]:
    return set(result["validation"]["problem_counts"])


def test_well_behaved_script_is_ok(run):
    result, _ = run("write_samples()")
    assert result["verdict"] == "OK", result["reason"]
    in_force = result["generation"]["limits_in_force"]
    assert in_force["sandbox"] == "bubblewrap"
    if os.geteuid() == 0:
        assert in_force["uid"] == 65534


def test_tcp_connect_is_blocked(run):
    result, log = run("socket.create_connection(('1.1.1.1', 80), timeout=3); write_samples()")
    assert result["verdict"] == "CRASH" and "Network is unreachable" in log


def test_dns_lookup_is_blocked(run):
    result, log = run("socket.getaddrinfo('example.com', 80); write_samples()")
    assert result["verdict"] == "CRASH" and "gaierror" in log


def test_write_into_the_submission_is_refused(run):
    result, log = run("open('model.py', 'a').write('# tampered'); write_samples()")
    assert result["verdict"] == "CRASH" and "Read-only file system" in log


def test_write_to_host_paths_is_refused(run):
    result, log = run("open('HOST_SECRET/pwned.txt', 'w').write('x'); write_samples()")
    assert result["verdict"] == "CRASH" and "No such file or directory" in log


def test_writes_to_tmp_stay_inside(run, host):
    result, _ = run("open('/tmp/pwned.txt', 'w').write('x'); write_samples()")
    assert result["verdict"] == "OK" and not Path("/tmp/pwned.txt").exists()


def test_reading_mnist_is_impossible(run):
    result, log = run("open('HOST_MNIST/MNIST/raw/t10k-images-idx3-ubyte', 'rb').read(16); write_samples()")
    assert result["verdict"] == "CRASH" and "No such file or directory" in log


def test_reading_reference_statistics_and_secrets_is_impossible(run):
    result, log = run("print(os.listdir('HOST_CACHE'), open('HOST_SECRET/token.txt').read()); write_samples()")
    assert result["verdict"] == "CRASH" and "top secret" not in log


def test_home_and_other_submissions_are_invisible(run):
    result, log = run("print(sorted(os.listdir('/'))); print(os.path.exists('/root/.cache'), os.path.exists('/work')); write_samples()")
    assert result["verdict"] == "OK"
    assert "False False" in log


def test_fork_bomb_is_contained(run):
    body = """
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
    """
    result, _ = run(body, limits=Limits(timeout_s=4, memory_bytes=400 << 20, pids=32))
    assert result["verdict"] == "TIMEOUT"
    assert result["generation"]["leftover_processes"] == 0


def test_memory_bomb_is_out_of_memory(run):
    body = """
    blocks = []
    while True:
        blocks.append(np.ones(50_000_000, dtype=np.uint8))
    """
    result, _ = run(body)
    assert result["verdict"] == "OUT_OF_MEMORY", result["reason"]


def test_busy_loop_times_out(run):
    result, _ = run("while True: pass", limits=Limits(timeout_s=2))
    assert result["verdict"] == "TIMEOUT" and "2 s" in result["reason"]


def test_sigterm_ignoring_script_is_killed(run):
    result, _ = run("signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(1)",
                    limits=Limits(timeout_s=2))
    assert result["verdict"] == "TIMEOUT" and result["generation"]["leftover_processes"] == 0


def test_daemonised_child_is_not_left_behind(run):
    body = """
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", "4242"])
        os._exit(0)
    write_samples()
    """
    result, _ = run(body)
    assert result["verdict"] == "OK"
    leftovers = subprocess.run(["pgrep", "-f", "sleep 4242"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""


@pytest.mark.parametrize("attack,code", [
    ("os.remove('samples/0.png'); os.symlink('/etc/passwd', 'samples/0.png')", "not_regular_file"),
    ("os.remove('samples/0.png'); os.link('samples/1.png', 'samples/0.png')", "hard_link"),
    ("os.remove('samples/0.png'); os.mkfifo('samples/0.png')", "not_regular_file"),
])
def test_special_files_in_samples_are_invalid(run, attack, code):
    result, _ = run(f"write_samples()\n{attack}")
    assert result["verdict"] == "INVALID_OUTPUT" and code in problem_codes(result)


def test_ten_gigabyte_sparse_file(run):
    result, log = run("write_samples()\nwith open('samples/0.png', 'r+b') as f: f.truncate(10 * 1024**3)")
    assert result["verdict"] == "CRASH" and "File too large" in log


def test_too_many_files(run):
    result, log = run("write_samples()\nfor i in range(500): open(f'samples/extra{i}', 'w').close()")
    if result["generation"]["limits_in_force"]["samples_tmpfs"]:
        assert result["verdict"] == "CRASH" and "No space left on device" in log
    else:
        assert result["verdict"] == "INVALID_OUTPUT" and "extra" in problem_codes(result)


def test_png_bomb(run):
    body = """
    import struct, zlib
    write_samples()
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    header = struct.pack('>IIBBBBB', 100000, 100000, 8, 0, 0, 0, 0)
    png = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\\0' * 10**6, 9)) + chunk(b'IEND', b'')
    open('samples/0.png', 'wb').write(png)
    """
    result, _ = run(body)
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"decompression_bomb"}


def test_jpeg_named_png(run):
    result, _ = run("write_samples()\nImage.open('samples/1.png').save('samples/0.png', format='JPEG')")
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"not_png"}


@pytest.mark.parametrize("call,code", [("write_samples(size=(32, 32))", "wrong_size"),
                                       ("write_samples(mode='RGBA')", "wrong_mode")])
def test_wrong_sizes_and_modes(run, call, code):
    result, _ = run(call)
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {code}


@pytest.mark.parametrize("count,code", [(N - 1, "missing"), (N + 1, "extra")])
def test_off_by_one_counts(run, count, code):
    result, _ = run(f"write_samples({count})")
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {code}


def test_environment_dump_shows_only_the_allowlist(run, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    result, log = run("print(sorted(os.environ.items())); write_samples()")
    assert result["verdict"] == "OK"
    assert "hunter2" not in log and "SECRET_TOKEN" not in log and "EVAL_NUM_SAMPLES" in log


def test_fake_result_files(run):
    body = """
    write_samples()
    open('samples/result.json', 'w').write('{"mnist.fid": 0.0}')
    try:
        open('HOST_RESULTS/result.json', 'w').write('{"mnist.fid": 0.0}')
    except OSError as err:
        print('blocked', err)
    """
    result, log = run(body)
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"extra"}
    assert "blocked" in log


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="a GPU machine: .cuda() would work")
def test_course_2023_style_cuda_code_needs_gpu(run):
    result, _ = run("import torch\nx = torch.zeros(1).cuda()\nwrite_samples()")
    assert result["verdict"] == "NEEDS_GPU", result["reason"]


def test_stale_committed_samples_are_not_scored(run):
    def commit_stale_samples(folder):
        (folder / "samples").mkdir()
        for i in range(N):
            (folder / "samples" / f"{i}.png").write_bytes(b"stale")
    result, _ = run("pass  # writes nothing", extra=commit_stale_samples)
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"missing"}
    assert result["submission"]["removed"]


def test_symlink_in_the_submission_is_refused(run):
    result, _ = run("write_samples()", extra=lambda f: os.symlink("/etc/passwd", f / "model.py"))
    assert result["verdict"] == "SANDBOX_ERROR" and "symbolic link" in result["reason"]
