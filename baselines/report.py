"""The results table of baselines/README.md, from the result JSONs of the assembled reference submissions.

    assemble-baselines && evaluate build/baselines/* --features mnist,inception -o baselines/results
    python -m baselines.report baselines/results > table.md

Inception columns stay empty for variants evaluated with MNIST features only. Beside each row, the
best Inception FID a course team reached with that variant on the course platform (the issue's
targets; ../shared/reference/course-and-variants.md section 6, whose calibration found the platform
and this pipeline within 2% on the same models).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from baselines.recipes import BASELINES_DIR
from evaluator.metrics import describe, label

# Columns by result name; labels, directions and formats come from the metric catalogue.
COLUMNS = ["mnist.fid", "mnist.precision", "mnist.recall", "mnist.density", "mnist.coverage",
           "class_coverage.tv_distance", "class_coverage.digits_present", "memorisation.near_copy_fraction",
           "inception.fid", "inception.precision", "inception.recall"]


# The best course number per variant (platform Inception FID, 10K samples, same fixed generator).
COURSE_FID: dict[str, float] = {
    "vanilla": 26.9,  # the template's own recipe, four teams 26.84-28.3
    "vanilla-template": 26.9,  # that recipe itself (Adam 2e-4, betas 0.9/0.999, no dropout, 100 epochs)
    "vanilla-template-ema": 26.9,  # that recipe with EMA of G, a last phase at half the rate, held-out choice
    "vanilla-drs": 30.04,  # Azadi DRS on the template vanilla (worse than its base there)
    "vanilla-template-ema-drs": 30.04,  # the same DRS on the template's recipe with EMA
    "vanilla-interpolation": 21.8,  # the template vanilla with z = a z1 + (1 - a) z2
    "wgan-gp-course-interpolation": 21.8,  # the same sampling on the best base
    "wgan": 32.0,
    "wgan-gp": 24.0,  # the #1 team's WGAN-GP before its rejection step (24.12 locally)
    "wgan-gp-course": 24.0,
    "wgan-gp-course-rejection": 17.0,  # the #1 team: critic rejection, sigmoid(D(x) - 4.5)
    "wgan-gp-latent-rs": 33.6,
    "wgan-gp-latent-ga": 32.5,
    "msgan": 34.8,
    "fgan-kl": 44.4,
    "fgan-js": 45.5,
}


def _course_cells(name: str, result: dict) -> list[str]:
    course = COURSE_FID.get(name)
    ours = result["metrics"].get("inception.fid")
    if course is None:
        return ["", ""]
    met = "" if ours is None else ("yes" if ours <= course else "no")
    return [f"{course:.1f}", met]


def _interval_cell(result: dict, name: str = "inception.fid") -> str:
    """The 95% bootstrap interval of `name`, or blank for results evaluated before intervals existed."""
    found = (result.get("uncertainty") or {}).get("intervals", {}).get(name)
    return "" if not found else f"{found[0]:.2f}–{found[1]:.2f}"


def latest_results(results_dir: Path) -> dict[str, dict]:
    latest = {}
    for path in sorted(results_dir.glob("*/*/result.json")):
        result = json.loads(path.read_text())
        latest[result.get("name", path.parent.parent.name)] = result  # run ids sort by time
    return latest


def table(results_dir: Path) -> str:
    header = ["variant", *(f"{label(name)} {describe(name).arrow()}".strip() for name in COLUMNS),
              "Inception FID 95%", "course FID", "at or below", "generate (s)",
              "evaluated on", "epochs", "train (s)", "trained on"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in sorted(latest_results(results_dir).items()):
        manifest_path = BASELINES_DIR / name / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        cells = [name]
        for column in COLUMNS:
            cells.append(describe(column).formatted(result["metrics"].get(column)))
        cells.append(_interval_cell(result))
        cells += _course_cells(name, result)
        cells += [f"{result.get('generation', {}).get('wall_time_s', 0):.1f}",
                  result.get("options", {}).get("device", ""), str(manifest.get("epochs", "")),
                  str(manifest.get("wall_time_s", "")), manifest.get("device", "")]
        if result.get("verdict", "OK") != "OK":
            cells[1] = result["verdict"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))
