"""One round over hostile folders and repositories, each class of the integrity review in one roster:
every team gets its right verdict and standing, and nothing of a team's runs outside the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluator import mnist
from tests.competition.conftest import SAMPLES, git_repository, kit, needs_sandbox, write_config

pytestmark = needs_sandbox

HEADER = textwrap.dedent("""
    import os, sys, numpy as np, torch
    from PIL import Image
    from model import Generator
    N = int(os.environ.get("EVAL_NUM_SAMPLES", "10000"))
    def save(x):
        pixels = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).reshape(-1, 28, 28).numpy()
        for i, p in enumerate(pixels):
            Image.fromarray(p).save(f"samples/{i}.png")
""")


def team_script(folder: Path, body: str, mkdir: bool = True) -> Path:
    (folder / "generate.py").write_text(HEADER + ("os.makedirs('samples', exist_ok=True)\n" if mkdir else "")
                                        + textwrap.dedent(body))
    return folder


def memorising_generator(digits: np.ndarray) -> dict:
    """The fixed architecture with weights that send one-hot latent i to digit i exactly: a
    compliant generator that copies the reference (only a copy test can see it)."""
    state = {f"fc{i}.{kind}": torch.zeros(shape) for i, (out, inp) in
             enumerate(((256, 100), (512, 256), (1024, 512), (784, 1024)), 1)
             for kind, shape in (("weight", (out, inp)), ("bias", (out,)))}
    for layer in (1, 2, 3):
        state[f"fc{layer}.weight"][:100, :100] = torch.eye(100)
    targets = torch.from_numpy(digits.reshape(len(digits), -1).astype(np.float32) / 127.5 - 1).clamp(-0.999, 0.999)
    state["fc4.weight"][:, :len(digits)] = torch.atanh(targets).T
    return state


@pytest.fixture
def roster(tmp_path, mnist_root):
    teams: list[tuple[str, str, str | None]] = []
    kit(tmp_path / "kit")
    teams.append(("kit", "kit", None))
    decoy = team_script(kit(tmp_path / "decoy"), """
        import torch.nn.functional as F
        G = Generator(784)
        with torch.no_grad():
            G.fc4.weight.zero_(); G.fc4.bias.zero_()
            G(torch.randn(N, 100))  # a compliant module runs; the images come from elsewhere
            w = torch.load("checkpoints/G.pth", map_location="cpu")
            x = torch.randn(N, 100)
            for i in (1, 2, 3):
                x = F.leaky_relu(F.linear(x, w[f"fc{i}.weight"], w[f"fc{i}.bias"]), 0.2)
            x = torch.tanh(F.linear(x, w["fc4.weight"], w["fc4.bias"])).reshape(-1, 1, 28, 28)
        save(F.avg_pool2d(x, 3, 1, 1).flip(3).reshape(-1, 784))
    """)
    teams.append(("decoy", decoy.name, None))
    copier = team_script(kit(tmp_path / "copier"), """
        G = Generator(784)
        G.load_state_dict(torch.load("memorised.pth", map_location="cpu"))
        with torch.no_grad():
            save(G(torch.eye(100)[torch.arange(N) % 64]))
    """)
    test_digits = mnist.load_split("test", str(mnist_root)).images[:64]
    torch.save(memorising_generator(test_digits), copier / "memorised.pth")
    teams.append(("copier", copier.name, None))
    paths = team_script(kit(tmp_path / "paths"), """
        print("prefix", sys.prefix, sys.base_prefix, torch.__file__, os.getcwd())
        torch.load("checkpoints/missing.pth")
    """)
    (paths / "requirements.txt").write_text("torch==2.1.0\nnvidia-cublas-cu12==12.1.3.1\ntriton==2.1.0\n")
    teams.append(("paths", paths.name, None))
    committed = team_script(kit(tmp_path / "committed"), """
        G = Generator(784)
        G.load_state_dict(torch.load("checkpoints/G.pth", map_location="cpu"))
        with torch.no_grad():
            save(G(torch.randn(N, 100)))
    """, mkdir=False)
    (committed / "samples").mkdir()
    (committed / "samples" / "0.png").write_bytes(b"stale")
    teams.append(("committed", committed.name, None))
    big = kit(tmp_path / "big-src")
    (big / "weights.bin").write_bytes(os.urandom(12_000_000))
    git_repository(big, tmp_path / "big.git")
    teams.append(("big", "big.git", "main"))
    git_repository(kit(tmp_path / "repo-src", note="by git"), tmp_path / "repo.git")
    teams.append(("repo", "repo.git", "main"))
    config = write_config(tmp_path, teams, extra='[fetch]\nmax_bytes = "12M"\n')
    return tmp_path, config


def test_one_round_gives_every_hostile_team_its_verdict_and_standing(roster, mnist_root, cache_dir):
    root, config = roster
    env = {**os.environ, "MNIST_ROOT": str(mnist_root), "EVALUATOR_CACHE": str(cache_dir)}
    done = subprocess.run([sys.executable, "-m", "competition", "round", str(config), "--jobs", "2"],
                          capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(subprocess.run([sys.executable, "-m", "competition", "status", str(config), "--json"],
                                       capture_output=True, text=True, env=env).stdout)["teams"]
    expected = {"kit": ("OK", "ranked", []), "repo": ("OK", "ranked", []), "committed": ("OK", "ranked", []),
                "decoy": ("OK", "unranked", ["rule_violation"]), "copier": ("OK", "unranked", ["data_copying"]),
                "paths": ("CRASH", "failed", []), "big": ("FETCH_FAILED", None, [])}
    for team, (verdict, standing, flags) in expected.items():
        got = status[team]
        assert (got["verdict"], got["standing"]) == (verdict, standing), (team, got)
        assert [flag for flag in got["flags"] if flag != "memorisation"] == flags, (team, got)
    assert "larger than the 12,582,912-byte limit" in status["big"]["reason"]
    [paths_run] = (root / "results" / "paths").iterdir()
    published = (paths_run / "log.txt").read_text() + (paths_run / "result.json").read_text()
    for prefix in {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, root)} - {"/", "/usr"}:
        assert prefix not in published
    assert "<python>" in published and "own build never installed (nvidia-cublas-cu12" in (root / "site" / "teams").joinpath(
        next(p.name for p in (root / "site" / "teams").iterdir() if p.name.startswith("paths"))).read_text()
    [copier_run] = (root / "results" / "copier").iterdir()
    copier = json.loads((copier_run / "result.json").read_text())
    assert copier["rule_check"]["status"] == "ok" and copier["metrics"]["copying.flagged"] is True
