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
import re
import shlex
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
RECIPE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
# The generation-time tricks that need nothing but the base's own networks, with the networks each
# reads beside G.pth and the settings it takes (submission/generate.py's Sampler). LatentRS and
# LatentGA also need a trained w(z) (train-reweighting); a critic trained further, calibrate-critic.
DERIVABLE = {
    "interpolation": ((), {}),
    "drs": (("D.pth",), {"gamma_percentile": (int, float), "burn_in": (int,), "d_dropout": (int, float)}),
    "critic_rejection": (("D.pth",), {"percentile": (int, float), "burn_in": (int,)}),
}


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


def derived_manifest(base: Recipe, sampling: dict, files: dict[str, str] | None = None, **extra) -> dict:
    """The manifest of a recipe that samples BASE's networks with a trick: BASE's training record and
    files (or `files`), what it derives from and how it samples, and `extra`. BASE's pixel map is
    left out: the derived recipe chooses its own (choose-pixel-map)."""
    record = {key: value for key, value in base.manifest.items() if key != "pixels"}
    files = dict(files or base.files)
    if "trained_files" in record:  # the float32 originals, of the files it keeps
        record["trained_files"] = {key: value for key, value in record["trained_files"].items() if key in files}
    return {**record, "files": files, "derived_from": base.name, "sampling": sampling, **extra}


def write_derived(folder: Path, manifest: dict) -> None:
    """A derived recipe's manifest.json and sampling.json (its method and settings, and its base)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (folder / "sampling.json").write_text(json.dumps({"base": manifest["derived_from"], **manifest["sampling"]}) + "\n")


def checked_name(name: str) -> str:
    """A new recipe's name, which becomes a folder of baselines/: lower-case letters, digits, hyphens."""
    if not RECIPE_NAME.fullmatch(name):
        raise RecipeError(f"recipe name {name!r}: use lower-case letters, digits and hyphens (at most 64)")
    return name


def derive(base_name: str, name: str, sampling: dict, command: str, recipes_dir: Path = BASELINES_DIR) -> dict:
    """Write recipe NAME: BASE's networks sampled with a trick of DERIVABLE; returns its manifest."""
    available = recipes()
    base = available.get(base_name)
    if base is None:
        raise RecipeError(f"no recipe {base_name!r}; known: {', '.join(sorted(available))}")
    if base.sampling is not None:
        raise RecipeError(f"{base_name} is itself derived (from {base.sampling.get('base')}); derive from a trained recipe")
    if (recipes_dir / checked_name(name)).exists():
        raise RecipeError(f"{recipes_dir / name} exists already")
    method = sampling.get("method") if isinstance(sampling, dict) else None
    if method not in DERIVABLE:
        raise RecipeError(f"sampling must be a JSON object whose method is one of {', '.join(DERIVABLE)}")
    networks, settings = DERIVABLE[method]
    for key, value in sampling.items():
        if key != "method" and (key not in settings or isinstance(value, bool)
                                or not isinstance(value, settings[key])):
            raise RecipeError(f"{method} takes {', '.join(settings) or 'no settings'}, each a number; "
                              f"not {key}={value!r}")
    missing = [network for network in networks if network not in base.files]
    if missing:
        raise RecipeError(f"{method} reads {', '.join(missing)}, which {base_name} does not keep "
                          f"(train it with --keep-d)")
    manifest = derived_manifest(base, sampling, {file: base.files[file] for file in ("G.pth", *networks)},
                                derivation={"command": command})
    write_derived(recipes_dir / name, manifest)
    return manifest


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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("base")
@click.argument("name")
@click.option("--sampling", "sampling_json", required=True, metavar="JSON",
              help='The trick and its settings, e.g. \'{"method": "drs", "gamma_percentile": 95}\'.')
def derive_main(base: str, name: str, sampling_json: str) -> None:
    """Write recipe NAME: BASE's stored networks sampled with a generation-time trick
    (interpolation, drs or critic_rejection). Choose its pixel map next: choose-pixel-map NAME."""
    try:
        sampling = json.loads(sampling_json)
    except json.JSONDecodeError as err:
        raise click.BadParameter(f"not JSON: {err}", param_hint="--sampling") from err
    try:
        derive(base, name, sampling, command=shlex.join(["derive-recipe", base, name, "--sampling", sampling_json]))
    except RecipeError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"baselines/{name}: {base} sampled with {sampling['method']}; next: choose-pixel-map {name} --write")


if __name__ == "__main__":
    main()
