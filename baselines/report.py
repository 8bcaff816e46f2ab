"""The results table of baselines/README.md, from `evaluate baselines/*` result JSONs.

    evaluate baselines/vanilla baselines/wgan-gp ... --features mnist,inception -o results
    python -m baselines.report results > table.md

Inception columns stay empty for variants evaluated with MNIST features only.
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


def latest_results(results_dir: Path) -> dict[str, dict]:
    latest = {}
    for path in sorted(results_dir.glob("*/*/result.json")):
        result = json.loads(path.read_text())
        latest[result.get("name", path.parent.parent.name)] = result  # run ids sort by time
    return latest


def table(results_dir: Path) -> str:
    header = ["variant", *(f"{label(name)} {describe(name).arrow()}".strip() for name in COLUMNS), "generate (s)",
              "evaluated on", "epochs", "train (s)", "trained on"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in sorted(latest_results(results_dir).items()):
        manifest_path = BASELINES_DIR / name / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        cells = [name]
        for name in COLUMNS:
            cells.append(describe(name).formatted(result["metrics"].get(name)))
        cells += [f"{result.get('generation', {}).get('wall_time_s', 0):.1f}",
                  result.get("options", {}).get("device", ""), str(manifest.get("epochs", "")),
                  str(manifest.get("wall_time_s", "")), manifest.get("device", "")]
        if result.get("verdict", "OK") != "OK":
            cells[1] = result["verdict"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))
