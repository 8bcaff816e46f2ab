"""The results table of baselines/README.md, from `evaluate baselines/*` result JSONs.

    evaluate baselines/vanilla baselines/wgan-gp ... --features mnist,inception -o results
    python -m baselines.report results > table.md

Inception columns stay empty for variants evaluated with MNIST features only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from baselines.train import BASELINES_DIR

COLUMNS = [("mnist.fid", "MNIST FID ↓", "{:.2f}"), ("mnist.precision", "P ↑", "{:.3f}"),
           ("mnist.recall", "R ↑", "{:.3f}"), ("mnist.density", "density", "{:.3f}"),
           ("mnist.coverage", "coverage ↑", "{:.3f}"), ("class_coverage.tv_distance", "class TV ↓", "{:.3f}"),
           ("class_coverage.digits_present", "digits", "{}"),
           ("memorisation.near_copy_fraction", "near-copies", "{:.4f}"),
           ("inception.fid", "Inception FID ↓", "{:.2f}"), ("inception.precision", "Inc. P ↑", "{:.3f}"),
           ("inception.recall", "Inc. R ↑", "{:.3f}")]


def latest_results(results_dir: Path) -> dict[str, dict]:
    latest = {}
    for path in sorted(results_dir.glob("*/*/result.json")):
        result = json.loads(path.read_text())
        latest[result.get("name", path.parent.parent.name)] = result  # run ids sort by time
    return latest


def table(results_dir: Path) -> str:
    header = ["variant", *(title for _, title, _ in COLUMNS), "generate (s)", "evaluated on", "epochs", "train (s)",
              "trained on"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in sorted(latest_results(results_dir).items()):
        manifest_path = BASELINES_DIR / name / "checkpoints" / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        cells = [name]
        for key, _, fmt in COLUMNS:
            value = result["metrics"].get(key)
            cells.append("" if value is None else fmt.format(value))
        cells += [f"{result.get('generation', {}).get('wall_time_s', 0):.1f}",
                  result.get("options", {}).get("device", ""), str(manifest.get("epochs", "")),
                  str(manifest.get("wall_time_s", "")), manifest.get("device", "")]
        if result.get("verdict", "OK") != "OK":
            cells[1] = result["verdict"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))
