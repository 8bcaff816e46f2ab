"""Reference submissions as recipes: every checkpoint stored once, assembled into complete folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from baselines import recipes

REPO = Path(__file__).resolve().parents[2]
RECIPES = recipes.recipes()


def test_every_variant_has_a_recipe_and_every_checkpoint_is_stored_once():
    assert len(RECIPES) >= 15
    digests = {digest for recipe in RECIPES.values() for digest in recipe.files.values()}
    stored = {path.stem for path in recipes.WEIGHTS_DIR.glob("*.pth")}
    kit = hashlib.sha256((REPO / "submission" / "checkpoints" / "G.pth").read_bytes()).hexdigest()
    assert digests <= stored | {kit} and stored <= digests  # nothing missing, nothing unreferenced
    for path in recipes.WEIGHTS_DIR.glob("*.pth"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem


def test_no_copies_of_the_kit_in_the_recipes():
    for recipe in RECIPES.values():
        assert not any((recipe.folder / name).exists() for name in (*recipes.KIT_FILES, "checkpoints"))


def test_a_derived_trick_names_its_base_and_uses_its_files():
    for recipe in RECIPES.values():
        if recipe.sampling is None:
            continue
        base = RECIPES[recipe.sampling["base"]]
        assert recipe.files["G.pth"] == base.files["G.pth"]
        if "D.pth" in recipe.files:
            assert recipe.files["D.pth"] == base.files["D.pth"]


def test_each_derived_recipe_is_what_its_recorded_command_writes(tmp_path):
    """derive-recipe rewrites every committed derived recipe that records it, byte for byte (its
    pixel map aside, which choose-pixel-map adds afterwards)."""
    import shlex

    replayed = 0
    for recipe in RECIPES.values():
        command = recipe.manifest.get("derivation", {}).get("command")
        if command is None:
            continue
        arguments = shlex.split(command)
        assert arguments[0] == "derive-recipe"
        manifest = recipes.derive(arguments[1], arguments[2], json.loads(arguments[4]), command, tmp_path)
        expected = {key: value for key, value in recipe.manifest.items() if key != "pixels"}
        assert manifest == expected, recipe.name
        assert (tmp_path / recipe.name / "sampling.json").read_text() == (recipe.folder / "sampling.json").read_text()
        replayed += 1
    assert replayed >= 5


@pytest.mark.parametrize("base, name, sampling, why", [
    ("vanilla", "Bad_Name", {"method": "interpolation"}, "lower-case"),
    ("vanilla", "../escape", {"method": "interpolation"}, "lower-case"),
    ("vanilla", "x", {"method": "latent_rs"}, "method is one of"),
    ("vanilla", "x", ["interpolation"], "method is one of"),
    ("vanilla", "x", {"method": "drs", "gamma": 95}, "takes gamma_percentile"),
    ("vanilla", "x", {"method": "drs", "burn_in": "10000"}, "takes gamma_percentile"),
    ("vanilla", "x", {"method": "drs", "burn_in": True}, "takes gamma_percentile"),
    ("vanilla-drs", "x", {"method": "interpolation"}, "itself derived"),
    ("no-such-recipe", "x", {"method": "interpolation"}, "no recipe"),
    ("vanilla", "vanilla-drs", {"method": "interpolation"}, "exists already"),
])
def test_derive_recipe_refuses_what_it_cannot_write(tmp_path, base, name, sampling, why):
    (tmp_path / "vanilla-drs").mkdir()
    with pytest.raises(recipes.RecipeError, match=why):
        recipes.derive(base, name, sampling, "test", tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["vanilla-drs"]


def test_derive_recipe_needs_the_networks_its_trick_reads(tmp_path):
    without_critic = next(name for name, recipe in RECIPES.items() if recipe.sampling is None
                          and "D.pth" not in recipe.files)
    with pytest.raises(recipes.RecipeError, match="D.pth"):
        recipes.derive(without_critic, "x", {"method": "drs"}, "test", tmp_path)
    manifest = recipes.derive(without_critic, "y", {"method": "interpolation"}, "test", tmp_path)
    assert manifest["files"] == {"G.pth": RECIPES[without_critic].files["G.pth"]} and "pixels" not in manifest


def test_derive_recipe_on_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "derive", lambda base, name, sampling, command: {"method": sampling["method"]})
    result = CliRunner().invoke(recipes.derive_main, ["vanilla", "z", "--sampling", '{"method": "interpolation"}'])
    assert result.exit_code == 0 and "choose-pixel-map z" in result.output
    result = CliRunner().invoke(recipes.derive_main, ["vanilla", "z", "--sampling", "{method"])
    assert result.exit_code != 0 and "not JSON" in result.output


@pytest.fixture(scope="module")
def assembled(tmp_path_factory):
    return recipes.assemble(out_dir=tmp_path_factory.mktemp("assembled"))


def test_assembled_folders_are_complete_submissions_with_the_kit_code(assembled):
    assert len(assembled) == len(RECIPES)
    for folder in assembled:
        for name in recipes.KIT_FILES:
            assert (folder / name).read_bytes() == (REPO / "submission" / name).read_bytes(), name
        manifest = json.loads((folder / "checkpoints" / "manifest.json").read_text())
        for name, digest in manifest["files"].items():
            assert hashlib.sha256((folder / "checkpoints" / name).read_bytes()).hexdigest() == digest
            assert not (folder / "checkpoints" / name).is_symlink()
        state = torch.load(folder / "checkpoints" / "G.pth", weights_only=True)
        assert state["fc1.weight"].shape == (256, 100) and state["fc4.weight"].shape == (784, 1024)
        if RECIPES[folder.name].sampling is not None:
            sampling = json.loads((folder / "checkpoints" / "sampling.json").read_text())
            assert "base" not in sampling and sampling["method"] == RECIPES[folder.name].sampling["method"]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_assembled_folder_runs_in_the_sandbox(name, assembled, mnist_root, cache_dir):
    from evaluator.pipeline import EvaluationOptions
    from evaluator.sandbox.limits import Limits
    from evaluator.sandbox.runner import bubblewrap
    from evaluator.submission import SubmissionOptions, evaluate_submission

    folder = next(f for f in assembled if f.name == name)
    options = EvaluationOptions(expected_count=24, data_root=str(mnist_root), cache_dir=str(cache_dir),
                                metrics=("class_coverage",))
    result, log, _ = evaluate_submission(folder, options, SubmissionOptions(
        batch_size=16, limits=Limits(timeout_s=300), sandbox=bubblewrap() is not None))
    assert result["verdict"] == "OK", (result["reason"], log)
    assert "wrote 24 PNGs" in log and result["rule_check"]["status"] == "ok"


def test_a_damaged_or_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(recipes, "WEIGHTS_DIR", tmp_path / "empty-store")
    with pytest.raises(recipes.RecipeError, match="no stored checkpoint has SHA-256"):
        recipes.assemble(["wgan"], tmp_path / "out")
    outcome = CliRunner().invoke(recipes.main, ["no-such-variant", "-o", str(tmp_path / "out")])
    assert outcome.exit_code == 1 and "no recipe for no-such-variant" in outcome.output


def test_a_recipes_pixel_map_is_written_by_its_assembled_folder(tmp_path, monkeypatch):
    found = recipes.recipes()
    chosen = found["vanilla-template-ema"]
    manifest = {**chosen.manifest, "pixels": {"map": "cut", "below": 12, "chosen_on": {"fid": {"cut": 1.0}}}}
    found["vanilla-template-ema"] = recipes.Recipe(chosen.name, chosen.folder, manifest, None)
    monkeypatch.setattr(recipes, "recipes", lambda: found)
    (folder,) = recipes.assemble(["vanilla-template-ema"], tmp_path)
    # the map without the evidence of its choice, which stays in the manifest
    assert json.loads((folder / "checkpoints" / "sampling.json").read_text()) == {"pixels": {"map": "cut", "below": 12}}


def test_the_pixel_map_is_chosen_on_held_out_digits_only(mnist_root):
    from baselines import pixel_map

    chosen = pixel_map.choose("vanilla-template-ema", count=300, data_root=str(mnist_root))
    fids = chosen["chosen_on"]["fid"]
    assert set(fids) == set(pixel_map.CANDIDATES) and chosen["map"] == pixel_map.CANDIDATES[min(fids, key=fids.get)]["map"]
    assert chosen["chosen_on"]["held_out"] == 10_000
    with pytest.raises(recipes.RecipeError, match="without held-out digits"):
        pixel_map.choose("vanilla-template", count=300, data_root=str(mnist_root))
