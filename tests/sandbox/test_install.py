"""Opt-in installation of a team's missing requirements: binary wheels, outside the sandbox, cached,
read-only inside, never replacing torch, torchvision or numpy; a failure is a clear verdict."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from evaluator.pipeline import EvaluationOptions
from evaluator.sandbox.install import RequirementInstaller
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import bubblewrap
from evaluator.submission import SubmissionOptions, evaluate_submission
from tests.sandbox.teams import N, PRELUDE

PACKAGE = "termcolor"  # small, pure Python, not in the evaluation environment


def _index_reachable() -> bool:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                           "--dest", "/tmp/.install-probe", PACKAGE], capture_output=True, timeout=120)
    return done.returncode == 0


pytestmark = [pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap is not installed"),
              pytest.mark.skipif(not _index_reachable(), reason="no package index reachable")]


@pytest.fixture
def evaluate(tmp_path, mnist_root, cache_dir):
    installer = RequirementInstaller(tmp_path / "site-packages", timeout_s=300)

    def run(requirements: str, body: str) -> dict:
        folder = tmp_path / "team"
        folder.mkdir(exist_ok=True)
        (folder / "requirements.txt").write_text(requirements)
        (folder / "generate.py").write_text(PRELUDE + textwrap.dedent(body))
        options = EvaluationOptions(expected_count=N, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                    metrics=("fid",))
        result, log, _ = evaluate_submission(folder, options, SubmissionOptions(
            limits=Limits(timeout_s=60), rule_check=False, installer=installer))
        result["log"] = log
        return result

    return run


def test_a_missing_package_is_installed_and_visible_read_only(evaluate, tmp_path):
    body = f"""
    import {PACKAGE}, numpy
    print('from', {PACKAGE}.__file__)
    print('numpy', numpy.__version__, numpy.__file__)
    try:
        open(os.path.join(os.path.dirname({PACKAGE}.__file__), 'x'), 'w')
    except OSError as err:
        print('read-only:', err.strerror)
    write_samples()
    """
    result = evaluate(f"{PACKAGE}\nnumpy==1.0.0\ntorch==0.1\n", body)
    assert result["verdict"] == "OK", result["reason"] + result["log"]
    assert "from /evaluator/site/" in result["log"] and "read-only: Read-only file system" in result["log"]
    assert "/evaluator/site" not in result["log"].split("numpy", 2)[-1]  # the environment's numpy
    installed = [p.name for p in (tmp_path / "site-packages").iterdir() if not p.name.endswith(".lock")]
    assert len(installed) == 1
    again = evaluate(f"{PACKAGE}\nnumpy==1.0.0\ntorch==0.1\n", body)  # cached by what was asked
    assert again["verdict"] == "OK" and again["requirements_installed"]["folder"] == installed[0]
    [package] = again["requirements_installed"]["packages"]
    assert package["name"] == PACKAGE and again["requirements_installed"]["bytes"] > 0


def test_a_failed_install_is_a_clear_verdict(evaluate):
    result = evaluate("definitely-not-a-real-package-2e7f==1.0\n", "write_samples()")
    assert result["verdict"] == "INSTALL_FAILED" and "definitely-not-a-real-package-2e7f" in result["reason"]


def test_nothing_missing_installs_nothing(evaluate, tmp_path):
    result = evaluate("numpy\npillow\n", "write_samples()")
    assert result["verdict"] == "OK" and result["requirements_installed"] is None
