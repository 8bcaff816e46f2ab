"""Latent reweighting: the w objective by hand, and w(z) rewarding what the critic likes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from baselines.kit import Generator
from baselines.networks import Discriminator, ImportanceNetwork
from baselines.reweighting import ReweightingConfig, w_objective, weight_critic_correlation

REPO = Path(__file__).resolve().parents[2]


def test_w_objective_by_hand():
    config = ReweightingConfig(m=3.0, lambda_mean=10.0, lambda_clip=3.0)
    w = torch.tensor([0.5, 1.0, 4.0])
    critic = torch.tensor([1.0, 2.0, 4.0])  # delta = 1
    expected = (0.5 * 0 + 1.0 * 1 + 4.0 * 3) / 3 - 10 * ((5.5 / 3) - 1) ** 2 - 3 * (1.0 ** 2) / 3
    assert w_objective(w, critic, config).item() == pytest.approx(expected, rel=1e-6)


def test_importance_network_is_non_negative_and_unbounded_above():
    network = ImportanceNetwork()
    with torch.no_grad():
        network.net[-2].bias.fill_(5.0)
    w = network(torch.randn(64, 100))
    assert (w >= 0).all() and w.max() > 1.0  # a sigmoid output could never exceed 1


def test_maximising_the_objective_raises_w_where_the_critic_is_high():
    """A few steps against a fixed critic D(G(z)) = z_0: w must learn to follow z_0."""
    torch.manual_seed(0)
    weights = ImportanceNetwork()
    optimizer = torch.optim.Adam(weights.parameters(), lr=1e-3)
    config = ReweightingConfig()
    for _ in range(300):
        z = torch.randn(256, 100)
        loss = -w_objective(weights(z), z[:, 0], config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    z = torch.randn(4000, 100)
    with torch.no_grad():
        correlation = torch.corrcoef(torch.stack([weights(z), z[:, 0]]))[0, 1]
    assert correlation > 0.5


@pytest.mark.parametrize("folder", ["wgan-gp-latent-rs", "wgan-gp-latent-ga"])
def test_committed_w_correlates_positively_with_the_critic(folder):
    from baselines.recipes import find_weights, recipes

    recipe = recipes()[folder]
    assert recipe.manifest["reweighting"]["w_critic_correlation"] > 0
    generator, weights = Generator(), ImportanceNetwork()
    generator.load_state_dict(torch.load(find_weights(recipe.files["G.pth"]), weights_only=True))
    weights.load_state_dict(torch.load(find_weights(recipe.files["W.pth"]), weights_only=True))
    critic = Discriminator()
    critic.load_state_dict(torch.load(find_weights(recipes()["wgan-gp"].files["D.pth"]), weights_only=True))
    # Against the base discriminator too (the trained critic starts from it).
    assert weight_critic_correlation(generator.eval(), critic.eval(), weights.eval(), "cpu") > 0
