"""Hostile submissions: each gets its exact verdict, and the host is left untouched.

Small N and small limits come from the evaluator's own options, so the suite stays fast. The
classes: escaping the sandbox, exhausting it, forging evidence, breaking the rule check, feeding
the evaluator's own (unsandboxed) work unbounded data, crowding other runs, and system calls the
seccomp profile denies. Team text on the organiser's terminal is covered in test_batch.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from evaluator.pipeline import EvaluationOptions
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import bubblewrap
from evaluator.sandbox.staging import remove_tree
from evaluator.submission import SubmissionOptions, evaluate_submission
from tests.sandbox.teams import N, PRELUDE, snapshot

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap (bwrap) is not installed")
ROOT = os.geteuid() == 0

SMALL = dict(timeout_s=20, memory_bytes=600 << 20, pids=64, samples_max_bytes=8 << 20,
             samples_max_files=100, tmp_bytes=16 << 20, max_file_bytes=8 << 20)


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


def scratch_entries(scratch: Path) -> list[str]:
    return sorted(p.name for p in scratch.iterdir())


@pytest.fixture
def run(tmp_path, host, mnist_root, cache_dir):
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def run_script(body: str | None, *, limits: Limits | None = None, extra=None, prelude: bool = True,
                   gpu: bool = False, kit: bool = False, rule_check: bool = False, seed: int = 0,
                   count: int = N, options: EvaluationOptions | None = None):
        folder = tmp_path / "team"
        if kit:
            shutil.copytree(REPO / "submission", folder, ignore=shutil.ignore_patterns("samples"),
                            dirs_exist_ok=True)
        folder.mkdir(exist_ok=True)
        if body is not None:
            script = (PRELUDE if prelude else "") + textwrap.dedent(body)
            for marker, key in (("HOST_SECRET", "secret_dir"), ("HOST_RESULTS", "results_dir"),
                                ("HOST_MNIST", "mnist_root"), ("HOST_CACHE", "cache_dir")):
                script = script.replace(marker, str(host[key]))
            (folder / "generate.py").write_text(script)
        if not (folder / "requirements.txt").exists():
            (folder / "requirements.txt").write_text("numpy\npillow\n")
        if extra:
            extra(folder)
        before = snapshot(host["secret_dir"], host["results_dir"], host["cache_dir"], folder,
                          mnist_root=host["mnist_root"])
        options = options or EvaluationOptions(expected_count=count, data_root=str(mnist_root),
                                               cache_dir=str(cache_dir), metrics=("fid",))
        result, log, _ = evaluate_submission(folder, options, SubmissionOptions(
            batch_size=64, limits=limits or Limits(**SMALL), rule_check=rule_check, seed=seed,
            scratch_dir=str(scratch), gpu=gpu))
        after = snapshot(host["secret_dir"], host["results_dir"], host["cache_dir"], folder,
                         mnist_root=host["mnist_root"])
        assert after == before, "host files changed"
        assert scratch_entries(scratch) == [], "the run's scratch copy was left behind"
        return result, log

    return run_script


def problem_codes(result) -> set[str]:
    return set(result["validation"]["problem_counts"])


# --- The run itself: fine when well behaved, identity and limits recorded ----------------------

def test_well_behaved_script_is_ok(run):
    result, _ = run("write_samples()")
    assert result["verdict"] == "OK", result["reason"]
    in_force = result["generation"]["limits_in_force"]
    assert in_force["sandbox"] == "bubblewrap"
    if ROOT:
        assert in_force["uid"] >= 3_000_000 and in_force["seccomp"] != "none"


def test_scratch_files_beside_samples_are_allowed(run):
    """The copy is throwaway: writing next to samples/ (and editing the copy) is fine, capped."""
    result, log = run("np.save('latents.npy', np.zeros(10)); open('model_cache.txt', 'w').write('x')\n"
                      "open('generate.py', 'a').write('# edited copy')\nwrite_samples()")
    assert result["verdict"] == "OK", result["reason"] + log


@pytest.mark.skipif(not ROOT, reason="the byte cap on the copy is a tmpfs, mounted as root")
def test_scratch_writes_beside_samples_are_capped(run):
    result, log = run("open('big.bin', 'wb').write(b'x' * (7 << 20)); open('big2.bin', 'wb').write(b'x' * (7 << 20))")
    assert result["verdict"] == "CRASH" and "No space left on device" in log


# --- Escapes -----------------------------------------------------------------------------------

def test_tcp_connect_is_blocked(run):
    result, log = run("socket.create_connection(('1.1.1.1', 80), timeout=3); write_samples()")
    assert result["verdict"] == "CRASH" and "Network is unreachable" in log


def test_dns_lookup_is_blocked(run):
    result, log = run("socket.getaddrinfo('example.com', 80); write_samples()")
    assert result["verdict"] == "CRASH" and "gaierror" in log


def test_write_to_host_paths_is_refused(run):
    result, log = run("open('HOST_SECRET/pwned.txt', 'w').write('x'); write_samples()")
    assert result["verdict"] == "CRASH" and "No such file or directory" in log


def test_writes_to_tmp_stay_inside(run):
    result, _ = run("open('/tmp/pwned.txt', 'w').write('x'); write_samples()")
    assert result["verdict"] == "OK" and not Path("/tmp/pwned.txt").exists()


def test_writes_to_the_python_environment_are_refused(run):
    result, log = run("import numpy\nopen(os.path.join(os.path.dirname(numpy.__file__), 'evil.py'), 'w')\n")
    assert result["verdict"] == "CRASH" and "Read-only file system" in log


def test_reading_mnist_is_impossible(run):
    result, log = run("open('HOST_MNIST/MNIST/raw/t10k-images-idx3-ubyte', 'rb').read(16); write_samples()")
    assert result["verdict"] == "CRASH" and "No such file or directory" in log


def test_reading_reference_statistics_and_secrets_is_impossible(run):
    result, log = run("print(os.listdir('HOST_CACHE'), open('HOST_SECRET/token.txt').read()); write_samples()")
    assert result["verdict"] == "CRASH" and "top secret" not in log


def test_home_and_other_submissions_are_invisible(run):
    # the harness's checkout, which holds the kit and the reference submissions (not '/work' itself:
    # a virtual environment under it is bound read-only, and so makes '/work' exist)
    result, log = run(f"print(sorted(os.listdir('/'))); print(os.path.exists('/root/.cache'), "
                      f"os.path.exists({str(REPO / 'submission')!r})); write_samples()")
    assert result["verdict"] == "OK"
    assert "False False" in log


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


# --- Exhaustion ---------------------------------------------------------------------------------

def test_fork_bomb_is_contained(run):
    body = """
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
    """
    result, _ = run(body, limits=Limits(**{**SMALL, "timeout_s": 5, "pids": 32}))
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
    result, _ = run("while True: pass", limits=Limits(**{**SMALL, "timeout_s": 3}))
    assert result["verdict"] == "TIMEOUT" and "3 s" in result["reason"]


def test_sigterm_ignoring_script_is_killed(run):
    result, _ = run("signal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(1)",
                    limits=Limits(**{**SMALL, "timeout_s": 3}))
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


def test_log_flood_is_kept_to_its_tail(run):
    result, log = run("sys.stdout.write('x' * 50_000_000); print(); print('the end'); write_samples()")
    assert result["verdict"] == "OK" and result["generation"]["log_bytes"] > 50_000_000
    assert len(log) <= 64 * 1024 and "the end" in log


# --- Output validation -----------------------------------------------------------------------

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


def test_compressed_text_chunks_never_reach_the_decoder(run):
    """Ancillary chunks are dropped before decoding: 300 zTXt chunks a file (once 800 times slower to
    validate), one of them a 10 MB text bomb that Pillow itself would refuse, leave the PNGs valid."""
    body = """
    import struct, zlib
    write_samples()
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    text = b''.join(chunk(b'zTXt', b'k%d\\x00\\x00' % i + zlib.compress(b'a' * 60000, 9)) for i in range(300))
    text += chunk(b'zTXt', b'bomb\\x00\\x00' + zlib.compress(b'a' * 10_000_000, 9))
    for i in range(N):
        data = open(f'samples/{i}.png', 'rb').read()
        open(f'samples/{i}.png', 'wb').write(data[:33] + text + data[33:])
    """
    result, _ = run(body)
    assert result["verdict"] == "OK", result["reason"]


def test_a_png_of_endless_chunks_is_refused(run):
    body = """
    import struct, zlib
    write_samples()
    data = open('samples/0.png', 'rb').read()
    empty = struct.pack('>I', 0) + b'teXt' + struct.pack('>I', zlib.crc32(b'teXt'))
    open('samples/0.png', 'wb').write(data[:33] + empty * 5000 + data[33:])
    """
    result, _ = run(body)
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"too_many_chunks"}


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


@pytest.mark.parametrize("name", ["²", "٣", "０", "1\x1b[2J", "[bold]1", "00"])
def test_odd_sample_names_are_reported_not_crashed_on(run, name):
    result, _ = run(f"write_samples()\nopen('samples/{name}.png', 'wb').write(open('samples/0.png', 'rb').read())")
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"extra"}


def test_invalid_output_report_is_complete_and_compressed(run):
    body = "write_samples(300)\nfor i in list(range(20, 40)) + list(range(200, 250)): os.remove(f'samples/{i}.png')"
    result, _ = run(body, count=300, limits=Limits(**{**SMALL, "samples_max_files": 400}))
    assert result["verdict"] == "INVALID_OUTPUT"
    [group] = result["validation"]["groups"]
    assert group["code"] == "missing" and group["count"] == 70 and group["files"] == "20–39.png, 200–249.png"
    assert "20–39.png, 200–249.png" in result["validation"]["summary"]


def test_thousands_of_long_names_keep_the_result_small(run):
    result, _ = run("write_samples()\nfor i in range(90): open('samples/' + 'x' * 200 + str(i), 'w').close()")
    assert result["verdict"] in ("INVALID_OUTPUT", "CRASH")
    assert len(str(result)) < 100_000


def test_stale_committed_samples_are_not_scored(run):
    def commit_stale_samples(folder):
        (folder / "samples").mkdir()
        for i in range(N):
            (folder / "samples" / f"{i}.png").write_bytes(b"stale")
    result, _ = run("pass  # writes nothing", extra=commit_stale_samples)
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"missing"}  # staged empty
    assert result["submission"]["removed"]
    assert result["reason"] == f"samples failed validation: {N} missing"


def test_a_committed_samples_folder_is_staged_empty_for_a_script_that_expects_it(run):
    """As on the course's platform: the script writes into samples/ without making it."""
    def commit_samples(folder):
        (folder / "samples").mkdir()
        (folder / "samples" / "0.png").write_bytes(b"stale")
    body = """
    assert os.path.isdir("samples") and os.listdir("samples") == []
    for i in range(N):  # straight into samples/, never making it
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (28, 28), dtype=np.uint8)).save(f"samples/{i}.png")
    """
    result, log = run(body, extra=commit_samples)
    assert result["verdict"] == "OK", result["reason"] + log


def test_no_samples_folder_is_made_where_the_team_had_none(run):
    result, log = run("assert not os.path.exists('samples'); os.mkdir('samples'); write_samples()")
    assert result["verdict"] == "OK", result["reason"] + log


def test_samples_as_a_link_is_said_in_words_without_host_paths(run):
    result, _ = run("os.symlink('/etc', 'samples')")
    assert result["verdict"] == "INVALID_OUTPUT"
    assert result["reason"] == "samples failed validation: samples is a symbolic link, not a folder"


@pytest.mark.parametrize("make", ["os.mkdir('samples')", "os.makedirs('samples')",
                                  "assert not os.path.exists('samples'); os.mkdir('samples')"])
def test_a_script_that_makes_its_own_samples_folder_runs_as_at_home(run, make):
    """The copy has no samples/ until generate.py makes it, as on a team's own machine."""
    result, log = run(f"{make}\nwrite_samples()")
    assert result["verdict"] == "OK", result["reason"] + log


def test_deep_folders_written_by_the_run_are_cleaned_up(run):
    body = """
    write_samples()
    fd = os.open('.', os.O_RDONLY)
    for _ in range(1100):
        os.mkdir('d' * 50, dir_fd=fd)
        deeper = os.open('d' * 50, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.fchmod(fd, 0)
    """
    result, _ = run(body, limits=Limits(**{**SMALL, "samples_max_files": 2000}))
    assert result["verdict"] == "OK", result["reason"]  # and the fixture checks the scratch is gone


def test_validation_stops_at_its_deadline(run):
    result, _ = run("write_samples()", limits=Limits(**{**SMALL, "validation_timeout_s": 0.0}))
    assert result["verdict"] == "INVALID_OUTPUT" and problem_codes(result) == {"not_checked"}


# --- Refused before anything runs --------------------------------------------------------------

def test_symlink_in_the_submission_is_refused(run):
    result, _ = run("write_samples()", extra=lambda f: os.symlink("/etc/passwd", f / "model.py"))
    assert result["verdict"] == "REFUSED" and "symbolic link" in result["reason"]


def test_a_hundred_thousand_empty_files_are_refused_quickly(run):
    def many_files(folder):
        (folder / "junk").mkdir()
        for i in range(100_000):
            (folder / "junk" / str(i)).touch()
    result, _ = run("write_samples()", extra=many_files)
    assert result["verdict"] == "REFUSED" and "more than 5000 files" in result["reason"]


def test_a_folder_nested_1100_deep_is_refused_and_cleaned_up(run, tmp_path):
    def nest(folder):
        fd = os.open(folder, os.O_RDONLY)
        for _ in range(1100):
            os.mkdir("n" * 40, dir_fd=fd)
            deeper = os.open("n" * 40, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        os.close(fd)
    try:
        result, _ = run("write_samples()", extra=nest)
    finally:  # pytest's own clean-up recurses, and would fail on this folder
        remove_tree(tmp_path / "team")
    assert result["verdict"] == "REFUSED" and "deeper than 32" in result["reason"]


def test_a_hundred_thousand_line_requirements_file_is_bounded(run):
    def requirements(folder):
        (folder / "requirements.txt").write_text("".join(f"pkg-{i}==1.0\n" for i in range(100_000)))
    result, _ = run("write_samples()", extra=requirements)
    assert result["verdict"] == "OK" and result["requirements"][-1]["problem"] == "cut"
    assert len(str(result["requirements"])) < 100_000


# --- Forged evidence -----------------------------------------------------------------------------

@pytest.mark.parametrize("printed", [
    "bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
    "RuntimeError: Found no NVIDIA driver on your system. Torch not compiled with CUDA enabled",
    "MemoryError: Cannot allocate memory (DefaultCPUAllocator: can't allocate)",
])
def test_printed_evidence_is_not_believed(run, printed):
    result, _ = run(f"print({printed!r}, file=sys.stderr)\nsys.exit(1)")
    assert result["verdict"] == "CRASH", result["reason"]


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="a GPU machine: .cuda() would work")
def test_hard_coded_cuda_needs_gpu_with_the_line_and_the_fix(run):
    result, _ = run("import torch\nx = torch.zeros(1).cuda()\nwrite_samples()")
    assert result["verdict"] == "NEEDS_GPU", result["reason"]
    assert "generate.py:" in result["reason"] and "x = torch.zeros(1).cuda()" in result["reason"]
    assert "torch.cuda.is_available()" in result["reason"]


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="a GPU machine: the checkpoint would load")
def test_gpu_saved_checkpoint_needs_map_location(run):
    import torch

    def gpu_checkpoint(folder):
        (folder / "checkpoints").mkdir()
        saved_tag = torch.serialization.location_tag
        torch.serialization.location_tag = lambda storage: "cuda:0"  # as if saved from a GPU
        try:
            torch.save({"w": torch.zeros(3)}, folder / "checkpoints" / "G.pth")
        finally:
            torch.serialization.location_tag = saved_tag
    result, _ = run("import torch\nstate = torch.load('checkpoints/G.pth')\nwrite_samples()", extra=gpu_checkpoint)
    assert result["verdict"] == "NEEDS_GPU" and "map_location" in result["reason"]


# --- Seccomp and user namespaces --------------------------------------------------------------------

@pytest.mark.parametrize("number,args,name", [
    (272, (0x10000000,), "unshare(CLONE_NEWUSER)"),
    (165, (b"none", b"/tmp", b"tmpfs", 0, None), "mount"),
    (101, (0, 0, 0, 0), "ptrace(PTRACE_TRACEME)"),
    (250, (0, 0, 0, 0), "keyctl"),
    (321, (0, 0, 0), "bpf"),
    (425, (8, 0), "io_uring_setup"),
    (56, (0x10000000 | 17, 0, 0, 0, 0), "clone(CLONE_NEWUSER)"),
])
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="system call numbers are x86_64's")
def test_denied_system_calls(run, number, args, name):
    result, log = run(f"print('{name}', syscall_errno({number}, *{args!r}))\nwrite_samples()")
    assert result["verdict"] == "OK"
    assert f"{name} (-1, {1})" in log  # EPERM


def test_no_user_namespace_even_with_the_tool(run):
    result, log = run("import subprocess\nprint(subprocess.run(['unshare', '-U', 'true'], capture_output=True).returncode)\nwrite_samples()")
    assert result["verdict"] == "OK" and log.strip().splitlines()[-1] != "0"


# --- The seed -------------------------------------------------------------------------------------

def test_an_unseeded_script_is_reproducible_under_the_evaluation_seed(run):
    body = """
    import torch, random
    os.makedirs('samples', exist_ok=True)
    for i in range(N):
        value = int(torch.randint(0, 256, (1,))) ^ int(np.random.randint(0, 256)) ^ random.randrange(256)
        Image.fromarray(np.full((28, 28), value, np.uint8)).save(f'samples/{i}.png')
    """
    first, _ = run(body, seed=7)
    again, _ = run(body, seed=7)
    other, _ = run(body, seed=8)
    assert first["verdict"] == "OK" and first["generation"]["seed"] == 7
    assert first["samples"]["sha256"] == again["samples"]["sha256"] != other["samples"]["sha256"]


# --- Concurrent runs do not share limits --------------------------------------------------------------

@pytest.mark.skipif(not ROOT, reason="per-run uids need root")
def test_a_thread_hog_does_not_starve_a_concurrent_run(tmp_path, mnist_root, cache_dir):
    hog = tmp_path / "hog"
    good = tmp_path / "good"
    for folder, body in ((hog, "import threading\nfor _ in range(60): threading.Thread(target=time.sleep, args=(8,)).start()\nwrite_samples()"),
                         (good, "import threading\nts=[threading.Thread(target=time.sleep, args=(1,)) for _ in range(40)]\n[t.start() for t in ts]\nwrite_samples()")):
        folder.mkdir()
        (folder / "generate.py").write_text(PRELUDE + body)
    options = EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                metrics=("fid",))
    limits = Limits(**{**SMALL, "pids": 64})
    outcomes = {}

    def evaluate(folder):
        outcomes[folder.name] = evaluate_submission(folder, options, SubmissionOptions(
            batch_size=64, limits=limits, rule_check=False))[0]

    threads = [threading.Thread(target=evaluate, args=(folder,)) for folder in (hog, good)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes["good"]["verdict"] == "OK", outcomes["good"]["reason"]
    assert outcomes["hog"]["verdict"] == "OK", outcomes["hog"]["reason"]
    uids = {outcomes[n]["generation"]["limits_in_force"]["uid"] for n in outcomes}
    assert len(uids) == 2


# --- The evaluation environment failing is never the team's doing -------------------------------

def test_an_environment_the_sandbox_cannot_import_from_is_a_sandbox_error(run, monkeypatch, tmp_path):
    """A virtual environment whose packages the sandbox cannot see (as when its folder is unreadable
    there): torch cannot be imported inside, which is the environment's failure, not a team's CRASH."""
    from evaluator.sandbox import runner

    base_python = os.path.realpath(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable)
    empty_env = tmp_path / "empty-env"
    (empty_env / "bin").mkdir(parents=True)
    (empty_env / "lib").mkdir()
    os.symlink(base_python, empty_env / "bin" / "python")
    (empty_env / "pyvenv.cfg").write_text(f"home = {os.path.dirname(base_python)}\n"
                                          f"include-system-site-packages = false\n")
    roots = [r for r in runner._python_roots() if r != os.path.realpath(sys.prefix)] + [str(empty_env)]
    monkeypatch.setattr(runner, "_python_roots", lambda: roots)
    monkeypatch.setattr(runner.sys, "executable", str(empty_env / "bin" / "python"))
    result, _ = run("import torch\nwrite_samples()", prelude=False, rule_check=True)
    assert result["verdict"] == "SANDBOX_ERROR", result["reason"]
    assert "not fully visible inside the sandbox" in result["reason"] and "rule_check" not in result


def test_a_virtual_environment_others_cannot_enter_still_works(run, monkeypatch, tmp_path):
    """A venv in a mode-0700 folder (what `mktemp -d` makes): its entries are bound one by one."""
    from evaluator.sandbox import runner

    private = tmp_path / "private-env"
    private.mkdir(mode=0o700)
    (private / "marker.txt").write_text("visible")
    real_roots = runner._python_roots()
    monkeypatch.setattr(runner, "_python_roots", lambda: [*real_roots, str(private)])
    result, log = run(f"print(open('{private}/marker.txt').read())\nwrite_samples()")
    assert result["verdict"] == "OK" and "visible" in log
