"""Calibrating a recipe's critic against the generator it ships with."""

from __future__ import annotations

import json

import pytest
import torch

from baselines import critic, recipes
from baselines.kit import LATENT_DIM, Generator
from baselines.networks import Discriminator
from baselines.recipes import RecipeError
from baselines.train import load_training_data

BASE = "wgan-gp-course"


def load(digest: str, network: torch.nn.Module, weights_dir) -> torch.nn.Module:
    path = weights_dir / f"{digest}.pth"
    state = torch.load(path if path.exists() else recipes.find_weights(digest), weights_only=True)
    network.load_state_dict({k: v.float() for k, v in state.items()})
    return network.eval()


@torch.no_grad()
def critic_gap(network, generator, real: torch.Tensor) -> float:
    """E[D(real)] - E[D(G(z))] on fixed draws: what the WGAN critic maximises."""
    fake = generator(torch.randn(len(real), LATENT_DIM, generator=torch.Generator().manual_seed(1)))
    return float(network(real).mean() - network(fake).mean())


def test_the_calibrated_critic_separates_the_exported_generator_better(tmp_path, mnist_root):
    base = recipes.recipes()[BASE]
    weights = tmp_path / "weights"
    manifest = critic.derive(BASE, "calibrated", epochs=1, percentile=40, data_root=str(mnist_root),
                             max_steps=300, recipes_dir=tmp_path, weights_dir=weights, command="test")
    assert manifest["files"]["G.pth"] == base.files["G.pth"]  # the base's generator, not a copy
    assert manifest["files"]["D.pth"] != base.files["D.pth"]
    assert sorted(p.stem for p in weights.glob("*.pth")) == [manifest["files"]["D.pth"]]
    assert manifest["critic_calibration"]["steps"] == 300 and manifest["derived_from"] == BASE
    sampling = json.loads((tmp_path / "calibrated" / "sampling.json").read_text())
    assert sampling == {"base": BASE, "method": "critic_rejection", "percentile": 40, "burn_in": 10_000}

    real = load_training_data(str(mnist_root), "cpu")[:2000]  # some of these are held out: a fair check
    generator = load(base.files["G.pth"], Generator(), weights)
    dropout = base.manifest["d_dropout"]
    before = critic_gap(load(base.files["D.pth"], Discriminator(dropout), weights), generator, real)
    after = critic_gap(load(manifest["files"]["D.pth"], Discriminator(dropout), weights), generator, real)
    assert after > before, (before, after)


def test_only_a_trained_recipe_with_a_critic_can_be_calibrated(tmp_path):
    derived = next(name for name, recipe in recipes.recipes().items() if recipe.sampling is not None)
    without_critic = next(name for name, recipe in recipes.recipes().items()
                          if recipe.sampling is None and "D.pth" not in recipe.files)
    for name in (derived, without_critic, "no-such-recipe"):
        with pytest.raises(RecipeError, match="not a trained recipe with a D.pth"):
            critic.derive(name, "x", epochs=1, percentile=50, recipes_dir=tmp_path)
