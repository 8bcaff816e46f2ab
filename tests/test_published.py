"""No organiser path in what is published: a team that prints every host path it can find, and
crashes inside torch, leaves only placeholders in log.txt and result.json."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

from evaluator.pipeline import EvaluationOptions
from evaluator import published
from evaluator.published import host_prefixes, redact, redact_text
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.runner import bubblewrap
from evaluator.submission import SubmissionOptions, evaluate_submission, write_outputs


def test_prefixes_are_replaced_only_where_a_path_component_ends():
    pairs = [("/srv/course/venv", "<python>"), ("/root", "~")]
    text = "/srv/course/venv/lib/torch/x.py /srv/course/venv2/x /root /root/a /rooted '/root'"
    assert redact_text(text, pairs) == "<python>/lib/torch/x.py /srv/course/venv2/x ~ ~/a /rooted '~'"
    assert redact({"a": ["/root/x", 3, {"/root": None}]}, pairs) == {"a": ["~/x", 3, {"~": None}]}


def test_the_running_python_is_always_a_placeholder():
    placeholders = dict(host_prefixes())
    assert placeholders[os.path.realpath(sys.prefix)] == "<python>"
    site_packages = [entry for entry in sys.path if entry.startswith(sys.prefix + "/") and os.path.isdir(entry)]
    assert site_packages and all(entry not in placeholders for entry in site_packages)  # <python>/lib/...
    assert all(prefix not in ("/", "/usr", "/tmp") for prefix in placeholders)


def test_every_import_location_and_the_harness_are_placeholders(tmp_path, monkeypatch):
    unusual = tmp_path / "srv" / "organiser libs (v2)"
    unusual.mkdir(parents=True)
    monkeypatch.syspath_prepend(str(unusual))
    placeholders = dict(host_prefixes())
    assert placeholders[os.path.realpath(unusual)] == "<python-path>"
    harness = os.path.dirname(os.path.dirname(os.path.realpath(published.__file__)))
    text = f"{unusual}/pkg/mod.py line 3; {harness}/evaluator/cli.py"
    assert redact_text(text, host_prefixes()) == "<python-path>/pkg/mod.py line 3; <harness>/evaluator/cli.py"


@pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap is not installed")
def test_published_log_and_result_name_no_host_path(tmp_path, mnist_root, cache_dir):
    folder = tmp_path / "organiser-home" / "teams" / "team"
    folder.mkdir(parents=True)
    (folder / "generate.py").write_text(textwrap.dedent("""
        import os, sys, sysconfig
        import numpy, torch
        print("prefix", sys.prefix, sys.base_prefix, sys.executable)
        print("paths", sys.path)
        print("modules", torch.__file__, numpy.__file__, os.__file__, sysconfig.get_paths()["purelib"])
        print("cwd", os.getcwd())
        open("bad.pth", "wb").write(b"not a checkpoint")
        torch.load("bad.pth", weights_only=True)  # a traceback through torch's own files
    """))
    options = EvaluationOptions(expected_count=10, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                metrics=("fid",))
    result, log, images = evaluate_submission(folder, options, SubmissionOptions(
        batch_size=64, limits=Limits(timeout_s=60), rule_check=False))
    assert result["verdict"] == "CRASH" and "serialization.py" in log  # the raw log names host paths
    assert "Traceback" in log and "<frozen" not in log and "bootstrap.py" not in log  # the team's frames only
    path = write_outputs(result, log, images, tmp_path / "results" / "team" / "run", str(mnist_root),
                         str(cache_dir))
    published = (path.parent / "log.txt").read_text() + path.read_text()
    host = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, mnist_root,
                                          cache_dir, tmp_path, os.path.expanduser("~"))}
    for prefix in host - {"/", "/usr", "/usr/local"}:
        assert prefix not in published, prefix
    assert "<python>/" in published and "serialization.py" in published
    assert json.loads(path.read_text())["submission"]["path"] == "<submissions>/team"
