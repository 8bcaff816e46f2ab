"""f-GAN (Nowozin et al. 2016): all seven divergences, T = g_f(V(x)).

D maximises E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))]; G maximises E_Q[g_f(V(G(z)))] (the paper's
practical objective). f*(g_f(v)) is written in closed, overflow-safe form for each divergence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from baselines.objectives.base import Objective

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Divergence:
    """Output activation g_f, conjugate f*, and f*(g_f(v)) in stable form."""

    activation: Fn  # g_f(v)
    conjugate: Fn  # f*(t), for tests and reference
    conjugate_of_activation: Fn  # f*(g_f(v)), simplified


LOG2 = math.log(2.0)

DIVERGENCES: dict[str, Divergence] = {
    "kl": Divergence(lambda v: v, lambda t: torch.exp(t - 1), lambda v: torch.exp(v - 1)),
    "reverse-kl": Divergence(lambda v: -torch.exp(-v), lambda t: -1 - torch.log(-t), lambda v: v - 1),
    "pearson": Divergence(lambda v: v, lambda t: t * t / 4 + t, lambda v: v * v / 4 + v),
    "neyman": Divergence(lambda v: 1 - torch.exp(-v), lambda t: 2 - 2 * torch.sqrt(1 - t),
                         lambda v: 2 - 2 * torch.exp(-v / 2)),
    "hellinger": Divergence(lambda v: 1 - torch.exp(-v), lambda t: t / (1 - t),
                            lambda v: torch.expm1(v)),
    "js": Divergence(lambda v: LOG2 - F.softplus(-v), lambda t: -torch.log(2 - torch.exp(t)),
                     lambda v: F.softplus(v) - LOG2),
    "gan": Divergence(lambda v: -F.softplus(-v), lambda t: -torch.log(1 - torch.exp(t)),
                      lambda v: F.softplus(v)),
}


@dataclass
class FGAN(Objective):
    """f-GAN with one of DIVERGENCES.

    `v_bound` softly bounds V to (-b, b) with b * tanh(V / b): the exponential activations and
    conjugates (KL, reverse KL, Neyman, Hellinger) otherwise overflow within a few epochs. This
    restricts the critic's function class, so the bound stays a valid variational lower bound.
    """

    divergence: str = "js"
    name: str = field(default="")
    v_bound: float | None = None

    def __post_init__(self) -> None:
        if self.divergence not in DIVERGENCES:
            raise ValueError(f"unknown divergence {self.divergence!r}; choose from {sorted(DIVERGENCES)}")
        self.name = self.name or f"fgan-{self.divergence}"
        self.f = DIVERGENCES[self.divergence]

    def critic(self, discriminator, x: torch.Tensor) -> torch.Tensor:
        """V(x), softly bounded when `v_bound` is set."""
        v = discriminator(x)
        return v if self.v_bound is None else self.v_bound * torch.tanh(v / self.v_bound)

    def d_loss(self, discriminator, real, fake):
        real_term = self.f.activation(self.critic(discriminator, real)).mean()
        fake_term = self.f.conjugate_of_activation(self.critic(discriminator, fake)).mean()
        return -(real_term - fake_term)

    def g_loss(self, discriminator, generator, z):
        return -self.f.activation(self.critic(discriminator, generator(z))).mean()
