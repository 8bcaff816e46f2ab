"""The built site: pages, exports, and escaping of everything teams control."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from leaderboard.cli import main
from tests.leaderboard.conftest import write_result

EVIL = '<script>alert("pwned")</script>'


def test_build_pages_and_exports(results, tmp_path):
    outcome = CliRunner().invoke(main, ["build", str(results), "-o", str(tmp_path / "site")])
    assert outcome.exit_code == 0, outcome.output
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    assert "baseline" in index and "TIMEOUT" in index and "memorisation" in index
    assert len(list((site / "teams").glob("*.html"))) == 4
    rows = list(csv.DictReader((site / "leaderboard.csv").open()))
    assert [row["team"] for row in rows] == ["beta", "vanilla", "alpha", "gamma"]
    exported = json.loads((site / "leaderboard.json").read_text())
    assert exported["rank_by"] == "mnist.fid" and exported["rows"][0]["mnist.fid"] == 2.0
    alpha_page = next(p for p in (site / "teams").glob("alpha-*.html")).read_text()
    assert alpha_page.count("<h2") == 3 and "../assets/" in alpha_page


def test_team_controlled_text_is_escaped(tmp_path):
    results = tmp_path / "results"
    write_result(results, EVIL, "2026-11-01T10:00:00", fid=1.0, log=EVIL, flags=("memorisation",))
    site = tmp_path / "site"
    CliRunner().invoke(main, ["build", str(results), "-o", str(site)], catch_exceptions=False)
    for page in [site / "index.html", *(site / "teams").glob("*.html")]:
        text = page.read_text()
        assert EVIL not in text and "&lt;script&gt;" in text
    assert all("<" not in p.name for p in (site / "teams").iterdir())


def test_bad_config_is_a_usage_error(results, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('selection = "worst"\n')
    outcome = CliRunner().invoke(main, ["build", str(results), "--config", str(config), "-o", str(tmp_path / "s")])
    assert outcome.exit_code == 2 and "selection" in outcome.output


def test_several_results_folders_make_one_leaderboard(tmp_path):
    teams, baselines = tmp_path / "results", tmp_path / "baseline-results"
    write_result(teams, "alpha", "2026-11-01T10:00:00", fid=3.0)
    write_result(baselines, "vanilla", "2026-11-01T09:00:00", fid=2.0, baseline=True)
    outcome = CliRunner().invoke(main, ["build", str(teams), str(baselines), "-o", str(tmp_path / "site")])
    assert outcome.exit_code == 0, outcome.output
    rows = json.loads((tmp_path / "site" / "leaderboard.json").read_text())["rows"]
    assert {row["team"] for row in rows} == {"alpha", "vanilla"}


def test_build_needs_a_results_folder(tmp_path):
    outcome = CliRunner().invoke(main, ["build", "-o", str(tmp_path / "site")])
    assert outcome.exit_code == 2 and "RESULTS_DIRS" in outcome.output


def test_csv_cells_cannot_become_formulas(tmp_path):
    results = tmp_path / "results"
    write_result(results, "=HYPERLINK(\"http://evil\")", "2026-11-01T10:00:00", fid=1.0)
    write_result(results, "+cmd", "2026-11-01T11:00:00", fid=2.0)
    site = tmp_path / "site"
    CliRunner().invoke(main, ["build", str(results), "-o", str(site)], catch_exceptions=False)
    teams = [row["team"] for row in csv.DictReader((site / "leaderboard.csv").open())]
    assert teams == ["'=HYPERLINK(\"http://evil\")", "'+cmd"]
    assert json.loads((site / "leaderboard.json").read_text())["rows"][0]["team"].startswith("=")


def test_pages_never_show_the_organisers_paths(tmp_path):
    results = tmp_path / "results"
    run_dir = write_result(results, "alpha", "2026-11-01T10:00:00", fid=1.0)
    result = json.loads((run_dir / "result.json").read_text())
    result["submission"] = {"path": "/home/organiser/secret-course/teams/alpha", "sha256": "0" * 64}
    result["samples"] = {"directory": "/home/organiser/secret-course/out/alpha-samples"}
    result["validation"] = {"ok": False, "summary": "/home/organiser/secret-course/out/alpha-samples: 1 problem"}
    (run_dir / "result.json").write_text(json.dumps(result))
    site = tmp_path / "site"
    CliRunner().invoke(main, ["build", str(results), "-o", str(site)], catch_exceptions=False)
    for page in [site / "index.html", *(site / "teams").glob("*.html"), site / "leaderboard.json"]:
        assert "/home/organiser" not in page.read_text()
    for path in site.rglob("*"):
        if path.is_file():
            assert oct(path.stat().st_mode & 0o777) == "0o644", path


def test_team_pages_show_the_memorisation_evidence(tmp_path):
    import numpy as np
    from PIL import Image

    results = tmp_path / "results"
    run_dir = write_result(results, "alpha", "2026-11-01T10:00:00", fid=1.0)
    Image.fromarray(np.zeros((62, 62), np.uint8)).save(run_dir / "closest.png")
    result = json.loads((run_dir / "result.json").read_text())
    result["details"]["memorisation.closest"] = [{"sample": 3, "split": "test", "mnist_index": 7, "similarity": 0.9991,
                                                  "margin": 0.002, "near_copy": True}]
    (run_dir / "result.json").write_text(json.dumps(result))
    site = tmp_path / "site"
    CliRunner().invoke(main, ["build", str(results), "-o", str(site)], catch_exceptions=False)
    page = next((site / "teams").glob("alpha-*.html")).read_text()
    assert "-closest.png" in page and "0.9991 / 0.9971 (copy)" in page and "threshold of its digit's class" in page
    assert len(list((site / "assets").glob("*-closest.png"))) == 1


def test_team_pages_tell_a_team_what_happened(tmp_path):
    """The log's end first, the rule check with its subset, small shares visible as percentages."""
    results = tmp_path / "results"
    log = "\n".join(f"line {i}" for i in range(200)) + "\nValueError: the real reason\n"
    run_dir = write_result(results, "alpha", "2026-11-01T10:00:00", fid=1.0, log=log)
    result = json.loads((run_dir / "result.json").read_text())
    result["metrics"]["memorisation.near_copy_fraction"] = 0.0004
    result["rule_check"] = {"ok": True, "status": "ok", "violations": [], "error": None, "checked": 318,
                            "traced": 318, "subset": "318 of 10,000 samples checked, drawn at random after the run"}
    (run_dir / "result.json").write_text(json.dumps(result))
    failed = write_result(results, "beta", "2026-11-01T10:00:00", verdict="CRASH")
    broken = json.loads((failed / "result.json").read_text())
    broken["rule_check"] = {"ok": False, "status": "not_run", "violations": [], "error": None}
    (failed / "result.json").write_text(json.dumps(broken))
    config = tmp_path / "c.toml"
    config.write_text('metrics = ["mnist.fid", "memorisation.near_copy_fraction"]\n')
    site = tmp_path / "site"
    CliRunner().invoke(main, ["build", str(results), "-o", str(site), "--config", str(config)],
                       catch_exceptions=False)
    page = next((site / "teams").glob("alpha-*.html")).read_text()
    end = page.index("Log: the end")
    assert page.index("ValueError: the real reason", end) < page.index("the whole log kept", end)
    assert "318 of 318 samples checked" in page and "drawn at random after the run" in page
    assert "0.04%" in page and "0.04%" in (site / "index.html").read_text()
    beta = next((site / "teams").glob("beta-*.html")).read_text()
    assert "Fixed-generator check: not run" in beta
