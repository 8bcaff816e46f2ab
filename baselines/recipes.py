"""Reference submissions kept as recipes, assembled into real folders on demand.

    assemble-baselines [VARIANT ...] [-o build/baselines]

A variant is a recipe in baselines/<variant>/: manifest.json (the training settings, the command
that reproduces them, the device and wall time, and each checkpoint by SHA-256), the training log,
and, for a generation-time trick, sampling.json naming its base. Checkpoints live once, in
baselines/weights/<sha256>.pth (the kit's own G.pth is found in submission/checkpoints/), so a
derived variant refers to its base's file instead of copying it. Assembling writes complete,
self-contained submission folders (the kit's generate.py, model.py and requirements.txt beside the
checkpoints, every file checked against its SHA-256) into a git-ignored folder: plain folders, as
`evaluate` requires (its staging refuses links).

Stored weights are float16 (they load into the float32 networks unchanged in shape): it halves the
repository, and the README measures that it moves no score beyond the run-to-run noise.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import click
import torch


from baselines.kit import KIT_DIR

BASELINES_DIR = Path(__file__).resolve().parent
REPO = BASELINES_DIR.parent
WEIGHTS_DIR = BASELINES_DIR / "weights"
BUILD_DIR = REPO / "build" / "baselines"
KIT_FILES = ("generate.py", "model.py", "requirements.txt")


class RecipeError(Exception):
    """A recipe cannot be assembled (a missing or damaged checkpoint, an unknown variant)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_state(state: dict[str, torch.Tensor], weights_dir: Path = WEIGHTS_DIR) -> str:
    """Keep a network's weights once, in float16, under their SHA-256; returns the SHA-256."""
    half = {key: (value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu())
            for key, value in state.items()}
    buffer = io.BytesIO()
    torch.save(half, buffer)
    data = buffer.getvalue()
    digest = sha256_bytes(data)
    path = weights_dir / f"{digest}.pth"
    if not path.exists():
        weights_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.replace(path)
    return digest


def find_weights(digest: str) -> Path:
    """The stored file with this SHA-256 (its content checked): the store, or the kit's checkpoints."""
    for candidate in (WEIGHTS_DIR / f"{digest}.pth", *sorted((KIT_DIR / "checkpoints").glob("*.pth"))):
        if candidate.is_file() and sha256_bytes(candidate.read_bytes()) == digest:
            return candidate
    raise RecipeError(f"no stored checkpoint has SHA-256 {digest} (looked in baselines/weights/ and "
                      f"submission/checkpoints/)")


def load_weights(network: torch.nn.Module, digest: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """`network` with the stored weights of this SHA-256 (float16 in the store, cast on copy)."""
    network.load_state_dict(torch.load(find_weights(digest), map_location=device, weights_only=True))
    return network


@dataclass
class Recipe:
    name: str
    folder: Path
    manifest: dict
    sampling: dict | None  # for a trick: the method, its settings and "base"

    @property
    def files(self) -> dict[str, str]:
        return self.manifest["files"]

    @property
    def pixels(self) -> dict | None:
        """How outputs become pixels: the choice in its manifest (choose-pixel-map), else sampling.json's."""
        if "pixels" in self.manifest:
            return self.manifest["pixels"]
        return self.sampling.get("pixels") if self.sampling else None

    @property
    def pixel_map(self) -> dict | None:
        """The pixel map as the assembled folder's sampling.json writes it: without its evidence."""
        pixels = self.pixels
        return None if pixels is None else {key: value for key, value in pixels.items() if key != "chosen_on"}


def recipes() -> dict[str, Recipe]:
    """Every variant with a manifest, by name."""
    found = {}
    for manifest in sorted(BASELINES_DIR.glob("*/manifest.json")):
        folder = manifest.parent
        if folder.name.startswith(("_", ".")) or folder == WEIGHTS_DIR:
            continue
        sampling = folder / "sampling.json"
        found[folder.name] = Recipe(folder.name, folder, json.loads(manifest.read_text()),
                                    json.loads(sampling.read_text()) if sampling.exists() else None)
    return found


def assemble(names: list[str] | None = None, out_dir: Path = BUILD_DIR) -> list[Path]:
    """Write each named recipe (default: all) as a complete submission folder under `out_dir`."""
    available = recipes()
    unknown = sorted(set(names or []) - set(available))
    if unknown:
        raise RecipeError(f"no recipe for {', '.join(unknown)}; known: {', '.join(sorted(available))}")
    built = []
    for name in names or sorted(available):
        recipe = available[name]
        folder = out_dir / name
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "checkpoints").mkdir(parents=True)
        for file in KIT_FILES:
            shutil.copyfile(KIT_DIR / file, folder / file)
        for file, digest in recipe.files.items():
            shutil.copyfile(find_weights(digest), folder / "checkpoints" / file)
        settings = {key: value for key, value in (recipe.sampling or {}).items() if key != "base"}
        if recipe.pixel_map is not None:  # the recipe's pixel map (choose-pixel-map)
            settings["pixels"] = recipe.pixel_map
        if settings:
            (folder / "checkpoints" / "sampling.json").write_text(json.dumps(settings) + "\n")
        (folder / "checkpoints" / "manifest.json").write_text(json.dumps(recipe.manifest, indent=2) + "\n")
        built.append(folder)
    return built


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("variants", nargs=-1)
@click.option("-o", "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=BUILD_DIR,
              show_default=True, help="Where the folders are written (git-ignored by default).")
def main(variants: tuple[str, ...], out_dir: Path) -> None:
    """Assemble reference submission folders (default: every variant) from their recipes."""
    try:
        for folder in assemble(list(variants) or None, out_dir):
            click.echo(str(folder))
    except RecipeError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
