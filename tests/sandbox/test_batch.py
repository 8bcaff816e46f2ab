"""One `evaluate` call over 20 hostile folders and 2 good ones, on a real terminal (a pty).

Every folder gets a result.json with the right verdict; the good ones are scored; no traceback; no
escape sequence of a team's reaches the terminal (rich's own colour codes are the only escapes);
the host is unchanged; the scratch area is empty afterwards.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from evaluator.sandbox.runner import bubblewrap
from tests.sandbox.teams import PRELUDE, snapshot

REPO = Path(__file__).resolve().parents[2]
N = 40
pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap (bwrap) is not installed")

ESCAPES = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\x1b[H\x1b[32mOK\x1b[0m\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\x9b2J\x07"
MARKUP = "[/] [bold red]FAKE[/bold red] [link=https://evil.example]x[/link] [/"


def script(body: str) -> str:
    return PRELUDE + textwrap.dedent(body)


def kit(folder: Path, generate: str | None = None) -> None:
    shutil.copytree(REPO / "submission", folder, ignore=shutil.ignore_patterns("samples"))
    if generate is not None:
        (folder / "generate.py").write_text(generate)


def hostile_folders(root: Path) -> dict[str, str]:
    """Folder name -> expected verdict."""
    expected = {}

    def plain(name: str, body: str, verdict: str, extra=None) -> None:
        folder = root / name
        folder.mkdir()
        (folder / "generate.py").write_text(script(body))
        (folder / "requirements.txt").write_text("numpy\n")
        if extra:
            extra(folder)
        expected[name] = verdict

    plain("markup-in-output", f"print({MARKUP!r})\nraise RuntimeError({MARKUP!r})", "CRASH")
    plain("escapes-in-output", f"print({ESCAPES!r}, file=sys.stderr)\nraise ValueError({ESCAPES!r})", "CRASH")
    plain("escapes-in-file-names", f"write_samples()\nopen('samples/' + {ESCAPES.replace(chr(0x9b), '')[:40]!r}"
                                   f".replace('/', '') + '.png', 'w').close()\n"
                                   "open('samples/[bold red]FAKE[.png', 'w').close()", "INVALID_OUTPUT")
    plain("hostile-requirements", "write_samples()", "OK", extra=lambda f: (f / "requirements.txt").write_text(
        f"{MARKUP}\n{ESCAPES}\n" + "".join(f"pkg-{i}[x]==1.0\n" for i in range(20_000))))
    plain("forged-bubblewrap-error", "print(\"bwrap: Can't mount proc on /newroot/proc\", file=sys.stderr)\nsys.exit(1)",
          "CRASH")
    plain("forged-cuda-error", "print('Torch not compiled with CUDA enabled')\nsys.exit(1)", "CRASH")
    plain("forged-memory-error", "print('MemoryError')\nsys.exit(1)", "CRASH")
    plain("network", "socket.create_connection(('1.1.1.1', 80), timeout=2)", "CRASH")
    plain("fork-bomb", "while True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)",
          "TIMEOUT")
    plain("memory-bomb", "blocks = []\nwhile True:\n    blocks.append(np.ones(50_000_000, dtype=np.uint8))",
          "OUT_OF_MEMORY")
    plain("busy-loop", "while True: pass", "TIMEOUT")
    plain("thread-hog", "import threading\nfor _ in range(50): threading.Thread(target=time.sleep, args=(2,)).start()\n"
                        "write_samples()", "OK")
    plain("symlink", "write_samples()", "REFUSED", extra=lambda f: os.symlink("/etc/shadow", f / "model.py"))

    def nest(folder: Path) -> None:
        deep = folder
        for _ in range(40):
            deep = deep / "n"
        deep.mkdir(parents=True)
    plain("deep-folder", "write_samples()", "REFUSED", extra=nest)

    def many_files(folder: Path) -> None:
        (folder / "junk").mkdir()
        for i in range(6000):
            (folder / "junk" / str(i)).touch()
    plain("many-files", "write_samples()", "REFUSED", extra=many_files)
    plain("stale-samples", "pass", "INVALID_OUTPUT", extra=lambda f: (f / "samples").mkdir())
    if not Path("/dev/nvidiactl").exists():
        plain("hard-coded-cuda", "import torch\ntorch.zeros(1).cuda()", "NEEDS_GPU")
    else:
        plain("hard-coded-cuda", "write_samples()", "OK")

    name = "tensor-names-[bold]x"
    kit(root / name, (REPO / "submission" / "generate.py").read_text().replace(
        "from model import", "import torch\nfrom model import").replace(
        "    sampler = Sampler(config, device)",
        f"    sampler = Sampler(config, device)\n"
        f"    sampler.generator.register_parameter({ESCAPES[:12]!r} + '[/]', torch.nn.Parameter(torch.zeros(3)))"))
    expected[name] = "OK"
    name = "folder-[bold red]x-\x1b[2J"
    kit(root / name)
    expected[name] = "OK"
    kit(root / "scratch-writer", (REPO / "submission" / "generate.py").read_text().replace(
        "    os.makedirs(args.out_dir, exist_ok=True)",
        "    os.makedirs(args.out_dir, exist_ok=True)\n    open('notes.txt', 'w').write('scratch')"))
    expected["scratch-writer"] = "OK"
    return expected


def run_on_a_terminal(command: list[str], env: dict) -> tuple[int, bytes]:
    """Run with stdout and stderr on a pseudo-terminal, as an organiser's shell would."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    output = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(), bytes(output)


def test_twenty_hostile_folders_and_two_good_ones_in_one_call(tmp_path, mnist_root, cache_dir):
    teams = tmp_path / "teams"
    teams.mkdir()
    expected = hostile_folders(teams)
    kit(teams / "good-kit")
    kit(teams / "good-interpolation")
    (teams / "good-interpolation" / "checkpoints" / "sampling.json").write_text('{"method": "interpolation"}')
    expected.update({"good-kit": "OK", "good-interpolation": "OK"})
    assert len(expected) == 22
    results, scratch = tmp_path / "results", tmp_path / "scratch"
    scratch.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("top secret")
    before = snapshot(teams, secrets, mnist_root=Path(mnist_root))
    command = [sys.executable, "-m", "evaluator.cli", *(str(teams / name) for name in expected),
               "--count", str(N), "--metrics", "fid", "--timeout", "8", "--memory", "1G",
               "--data-root", str(mnist_root), "--cache-dir", str(cache_dir), "-o", str(results),
               "--scratch-dir", str(scratch)]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    code, output = run_on_a_terminal(command, env)
    text = output.decode("utf-8", errors="replace")
    assert code == 6, text[-3000:]  # some verdicts are not OK
    assert "Traceback" not in text and "internal error" not in text
    assert snapshot(teams, secrets, mnist_root=Path(mnist_root)) == before
    assert list(scratch.iterdir()) == []
    # The only escape sequences on the terminal are rich's own: colours, and the progress display's
    # cursor moves and line erasing. No OSC (clipboard, links), no screen clear, no cursor home.
    rich_own = re.compile(rb"\x1b\[(?:[0-9;]*m|\?25[lh]|2K|[0-9]*[ABCDG])")
    assert rich_own.sub(b"", output).count(b"\x1b") == 0, "a team's escape reached the terminal"
    assert b"\x9b" not in output and b"\x07" not in output
    assert "\\x1b]52" in text and "\\x1b[32mOK" in text  # shown, made visible
    for name, verdict in expected.items():
        [path] = (results / name).glob("*/result.json")
        assert oct(path.stat().st_mode & 0o777) == "0o644"
        result = json.loads(path.read_text())
        assert result["verdict"] == verdict, (name, result["reason"])
        if name.startswith("good"):
            assert result["rule_check"]["status"] == "ok" and "mnist.fid" in result["metrics"]
    tensor_team = json.loads(next((results / "tensor-names-[bold]x").glob("*/result.json")).read_text())
    assert any(flag["code"] == "rule_violation" for flag in tensor_team["flags"])
    assert "summary" in text and text.count("good-") >= 2
