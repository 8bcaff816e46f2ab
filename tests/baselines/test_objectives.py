"""Every objective's losses on tiny batches against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from baselines.objectives import OBJECTIVES, make_objective
from baselines.objectives.fgan import DIVERGENCES
from baselines.objectives.msgan import mode_seeking_ratio
from baselines.objectives.wgan import gradient_penalty


class Lookup(nn.Module):
    """A 'discriminator' whose output is the first input coordinate: D(x) = x[:, 0]."""

    def forward(self, x):
        return x[:, 0]


class Constant(nn.Module):
    """A 'generator' that returns z * scale."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))

    def forward(self, z):
        return z * self.scale


REAL = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
FAKE = torch.tensor([[-1.0, 0.0], [0.5, 0.0]])


def sp(x):
    return math.log1p(math.exp(x))


def test_vanilla_losses():
    objective = make_objective("vanilla")
    expected_d = (sp(-1) + sp(-2)) / 2 + (sp(-1) + sp(0.5)) / 2
    assert objective.d_loss(Lookup(), REAL, FAKE).item() == pytest.approx(expected_d, rel=1e-6)
    z = torch.tensor([[0.3, 0.0], [-0.7, 0.0]])
    assert objective.g_loss(Lookup(), Constant(), z).item() == pytest.approx((sp(-0.3) + sp(0.7)) / 2, rel=1e-6)


def test_vanilla_matches_bce_with_logits():
    objective = make_objective("vanilla")
    d_real, d_fake = Lookup()(REAL), Lookup()(FAKE)
    bce = nn.functional.binary_cross_entropy_with_logits
    expected = bce(d_real, torch.ones(2)) + bce(d_fake, torch.zeros(2))
    assert objective.d_loss(Lookup(), REAL, FAKE).item() == pytest.approx(expected.item(), rel=1e-6)


def test_wgan_losses_and_clipping():
    objective = make_objective("wgan")
    assert objective.d_loss(Lookup(), REAL, FAKE).item() == pytest.approx(-0.25 - 1.5)
    z = torch.tensor([[0.3, 0.0], [-0.7, 0.0]])
    assert objective.g_loss(Lookup(), Constant(), z).item() == pytest.approx(0.2)
    layer = nn.Linear(3, 3)
    with torch.no_grad():
        layer.weight.fill_(0.5)
    objective.after_d_step(layer)
    assert layer.weight.abs().max().item() == pytest.approx(0.01)
    assert (objective.n_critic, objective.optimizer.name, objective.optimizer.lr_d) == (5, "rmsprop", 5e-5)


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = w.x has gradient w everywhere: penalty = (|w| - 1)^2 exactly.
    critic = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0]]))
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), torch.randn(8, 4), torch.randn(8, 4))
    assert penalty.item() == pytest.approx(16.0)
    objective = make_objective("wgan-gp")
    assert (objective.gp_weight, objective.n_critic, objective.optimizer.betas) == (10.0, 5, (0.0, 0.9))


def numeric_conjugate(f, t, bounds):
    """f*(t) = sup_u (t u - f(u)), numerically."""
    result = minimize_scalar(lambda u: -(t * u - f(u)), bounds=bounds, method="bounded",
                             options={"xatol": 1e-10})
    return -result.fun


# The generator functions f(u) of Nowozin et al. 2016, Table 1, used to check the conjugates.
GENERATORS = {
    "kl": lambda u: u * math.log(u),
    "reverse-kl": lambda u: -math.log(u),
    "pearson": lambda u: (u - 1) ** 2,
    "neyman": lambda u: (1 - u) ** 2 / u,
    "hellinger": lambda u: (math.sqrt(u) - 1) ** 2,
    "js": lambda u: -(u + 1) * math.log((1 + u) / 2) + u * math.log(u),
    "gan": lambda u: u * math.log(u) - (u + 1) * math.log(u + 1),
}


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_fgan_conjugates_are_the_convex_conjugates(name):
    divergence = DIVERGENCES[name]
    for v in (-1.0, -0.3, 0.2, 0.8):
        t = divergence.activation(torch.tensor(v, dtype=torch.float64)).item()
        expected = numeric_conjugate(GENERATORS[name], t, (1e-9, 1e3))
        assert divergence.conjugate(torch.tensor(t, dtype=torch.float64)).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_fgan_stable_forms_equal_the_composition(name):
    divergence = DIVERGENCES[name]
    v = torch.linspace(-3, 3, 13, dtype=torch.float64)
    composed = divergence.conjugate(divergence.activation(v))
    torch.testing.assert_close(divergence.conjugate_of_activation(v), composed)


def test_fgan_stable_forms_do_not_overflow():
    v = torch.tensor([-200.0, 200.0])
    for name in ("js", "gan", "reverse-kl"):
        assert torch.isfinite(DIVERGENCES[name].conjugate_of_activation(v)).all(), name


@pytest.mark.parametrize("name", sorted(DIVERGENCES))
def test_fgan_losses_by_hand(name):
    objective = make_objective(f"fgan-{name}")
    f = DIVERGENCES[name]
    bound = objective.v_bound or math.inf

    def bounded(v):
        return v if bound == math.inf else bound * torch.tanh(v / bound)

    real_v, fake_v = bounded(Lookup()(REAL).double()), bounded(Lookup()(FAKE).double())
    expected_d = -(f.activation(real_v).mean() - f.conjugate(f.activation(fake_v)).mean()).item()
    assert objective.d_loss(Lookup(), REAL.double(), FAKE.double()).item() == pytest.approx(expected_d, rel=1e-9)
    z = torch.tensor([[0.3, 0.0], [-0.7, 0.0]], dtype=torch.float64)
    expected_g = -f.activation(bounded(z[:, 0])).mean().item()
    assert objective.g_loss(Lookup(), Constant(), z).item() == pytest.approx(expected_g, rel=1e-6)


def test_fgan_gan_divergence_generator_loss_is_the_non_saturating_loss():
    z = torch.tensor([[0.3, 0.0], [-0.7, 0.0]])
    assert make_objective("fgan-gan").g_loss(Lookup(), Constant(), z).item() == pytest.approx(
        make_objective("vanilla").g_loss(Lookup(), Constant(), z).item())


def test_fgan_js_and_gan_have_the_vanilla_gradients():
    """JS and GAN f-GAN losses differ from vanilla's by constants only (so they train alike)."""
    z = torch.tensor([[0.3, 0.0], [-0.7, 0.0]])
    vanilla = make_objective("vanilla")
    for name, d_shift, g_shift in (("fgan-js", -2 * math.log(2), -math.log(2)), ("fgan-gan", 0.0, 0.0)):
        objective = make_objective(name)
        assert objective.d_loss(Lookup(), REAL, FAKE).item() == pytest.approx(
            vanilla.d_loss(Lookup(), REAL, FAKE).item() + d_shift, rel=1e-6)
        assert objective.g_loss(Lookup(), Constant(), z).item() == pytest.approx(
            vanilla.g_loss(Lookup(), Constant(), z).item() + g_shift, rel=1e-6)


def test_bounded_critic_keeps_exponential_divergences_finite():
    objective = make_objective("fgan-hellinger")
    huge = torch.tensor([[500.0, 0.0], [-500.0, 0.0]])
    assert torch.isfinite(objective.d_loss(Lookup(), huge, huge))


def test_msgan_rewards_diversity():
    torch.manual_seed(0)
    z1, z2 = torch.randn(4, 2), torch.randn(4, 2)
    ratio, _, _ = mode_seeking_ratio(Constant(2.0), z1, z2)
    assert ratio.item() == pytest.approx(2.0, rel=1e-6)  # |2 z2 - 2 z1| / |z2 - z1|
    objective = make_objective("msgan")
    # A more diverse generator (larger scale) pays a smaller mode-seeking term.
    terms = []
    for scale in (0.5, 1.0, 2.0):
        torch.manual_seed(1)
        loss = objective.g_loss(lambda x: torch.zeros(len(x)), Constant(scale), torch.randn(16, 2))
        terms.append(loss.item() - math.log(2))  # adversarial part is softplus(0) = log 2
    assert terms[0] > terms[1] > terms[2] > 0
    assert terms[1] == pytest.approx(1.0 / (1.0 + 1e-5), rel=1e-6)


def test_every_variant_is_registered():
    expected = {"vanilla", "wgan", "wgan-gp", "msgan"} | {f"fgan-{n}" for n in
                ("kl", "reverse-kl", "pearson", "neyman", "hellinger", "js", "gan")}
    assert set(OBJECTIVES) == expected
    with pytest.raises(KeyError, match="unknown variant"):
        make_objective("stylegan")
