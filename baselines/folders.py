"""Make every trained variant a complete reference submission folder.

    sync-baselines            # after training: copy the kit's code into every baselines/<variant>/

Plain variants get the kit's generate.py, model.py and requirements.txt next to their trained
checkpoints. Derived folders reuse a base variant's checkpoints and add a sampling trick
(checkpoints/sampling.json, read by the kit's generate.py) and its extra network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from baselines.kit import KIT_DIR
from baselines.train import BASELINES_DIR

KIT_FILES = ("generate.py", "model.py", "requirements.txt")

# name -> base variant, files copied from the base's checkpoints, sampling.json, extra network.
DERIVED: dict[str, dict] = {
    "vanilla-drs": {"base": "vanilla", "files": ("G.pth", "D.pth"),
                    "sampling": {"method": "drs", "gamma_percentile": 95, "burn_in": 10000,
                                 "d_dropout": 0.3}},
    "vanilla-interpolation": {"base": "vanilla", "files": ("G.pth",),
                              "sampling": {"method": "interpolation"}},
    "wgan-gp-latent-rs": {"base": "wgan-gp", "files": ("G.pth",), "weights_from": "wgan-gp",
                          "sampling": {"method": "latent_rs", "m": 3}},
    "wgan-gp-latent-ga": {"base": "wgan-gp", "files": ("G.pth",), "weights_from": "wgan-gp",
                          "sampling": {"method": "latent_ga", "steps": 10, "step_size": 0.02}},
}


def trained_variants() -> list[str]:
    return sorted(p.parent.parent.name for p in BASELINES_DIR.glob("*/checkpoints/manifest.json")
                  if p.parent.parent.name not in DERIVED)


def copy_kit(folder: Path) -> None:
    for name in KIT_FILES:
        shutil.copy(KIT_DIR / name, folder / name)


def build_folders(names: list[str] | None = None) -> list[str]:
    """(Re)build the named folders (default: all); returns those built."""
    built = []
    for variant in trained_variants():
        if names is None or variant in names:
            copy_kit(BASELINES_DIR / variant)
            built.append(variant)
    for name, spec in DERIVED.items():
        if names is not None and name not in names:
            continue
        base = BASELINES_DIR / spec["base"] / "checkpoints"
        weights = BASELINES_DIR / "_reweighting" / spec.get("weights_from", "") / "W.pth"
        if not base.exists() or ("weights_from" in spec and not weights.exists()):
            continue
        folder = BASELINES_DIR / name
        (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
        copy_kit(folder)
        for file in spec["files"]:
            shutil.copy(base / file, folder / "checkpoints" / file)
        manifest = json.loads((base / "manifest.json").read_text())
        if "weights_from" in spec:
            shutil.copy(weights, folder / "checkpoints" / "W.pth")
            manifest["reweighting"] = json.loads((weights.parent / "manifest.json").read_text())
        manifest["derived_from"] = spec["base"]
        manifest["sampling"] = spec["sampling"]
        (folder / "checkpoints" / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (folder / "checkpoints" / "sampling.json").write_text(json.dumps(spec["sampling"]) + "\n")
        built.append(name)
    return built


@click.command()
def main() -> None:
    """Copy the kit's code into every baseline folder and (re)build the derived ones."""
    for name in build_folders():
        click.echo(f"baselines/{name}/")


if __name__ == "__main__":
    main()
