"""The baselines' results table, from result JSONs as `evaluate -o DIR` writes them."""

from __future__ import annotations

import json

from baselines import report


def write_result(root, name: str, run_id: str, metrics: dict, verdict: str = "OK", device: str = "cpu") -> None:
    run = root / name / run_id
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"name": name, "verdict": verdict, "metrics": metrics,
                                                 "generation": {"wall_time_s": 4.2},
                                                 "options": {"device": device}}))


def test_latest_run_wins_and_inception_columns_fill_when_present(tmp_path):
    write_result(tmp_path, "vanilla", "20261122T100000Z-aaaaaa", {"mnist.fid": 9.0})
    write_result(tmp_path, "vanilla", "20261122T110000Z-bbbbbb",
                 {"mnist.fid": 1.35, "inception.fid": 12.345, "inception.precision": 0.7, "inception.recall": 0.5})
    write_result(tmp_path, "wgan", "20261122T100000Z-cccccc", {"mnist.fid": 9.35}, device="cuda")
    lines = report.table(tmp_path).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert set(rows) == {"vanilla", "wgan"}
    vanilla, wgan = rows["vanilla"], rows["wgan"]
    assert vanilla[header.index("MNIST FID ↓")] == "1.350"  # the catalogue's format
    assert vanilla[header.index("Inception FID ↓")] == "12.345"
    assert vanilla[header.index("Inception precision ↑")] == "0.7000"
    assert wgan[header.index("Inception FID ↓")] == ""
    assert (vanilla[header.index("evaluated on")], wgan[header.index("evaluated on")]) == ("cpu", "cuda")


def test_a_failed_run_shows_its_verdict(tmp_path):
    write_result(tmp_path, "broken", "20261122T100000Z-dddddd", {}, verdict="CRASH")
    row = report.table(tmp_path).splitlines()[2]
    assert "CRASH" in row


def test_each_row_sets_our_inception_fid_beside_the_course_best(tmp_path):
    write_result(tmp_path, "vanilla", "20261122T100000Z-aaaaaa", {"mnist.fid": 1.3, "inception.fid": 26.0})
    write_result(tmp_path, "wgan", "20261122T100000Z-bbbbbb", {"mnist.fid": 9.0, "inception.fid": 145.2})
    write_result(tmp_path, "fgan-pearson", "20261122T100000Z-cccccc", {"mnist.fid": 1.4, "inception.fid": 71.0})
    write_result(tmp_path, "msgan", "20261122T100000Z-dddddd", {"mnist.fid": 4.6})
    lines = report.table(tmp_path).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    course, met = header.index("course FID"), header.index("at or below")
    assert (rows["vanilla"][course], rows["vanilla"][met]) == ("26.9", "yes")
    assert (rows["wgan"][course], rows["wgan"][met]) == ("32.0", "no")
    assert (rows["fgan-pearson"][course], rows["fgan-pearson"][met]) == ("", "")  # no course row
    assert (rows["msgan"][course], rows["msgan"][met]) == ("34.8", "")  # not scored with Inception


def test_every_course_row_names_a_recipe():
    from baselines.recipes import recipes

    assert set(report.COURSE_FID) <= set(recipes())
