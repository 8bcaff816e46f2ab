"""Wasserstein GAN: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from baselines.objectives.base import Objective, OptimizerSettings


@dataclass
class WGANClip(Objective):
    """L_D = E[D(G(z))] - E[D(x)], then clamp every critic weight to [-c, c]; L_G = -E[D(G(z))]."""

    name: str = "wgan"
    n_critic: int = 5
    clip: float = 0.01
    optimizer: OptimizerSettings = field(
        default_factory=lambda: OptimizerSettings("rmsprop", lr_g=5e-5, lr_d=5e-5))

    def d_loss(self, discriminator, real, fake):
        return discriminator(fake).mean() - discriminator(real).mean()

    def g_loss(self, discriminator, generator, z):
        return -discriminator(generator(z)).mean()

    @torch.no_grad()
    def after_d_step(self, discriminator):
        for parameter in discriminator.parameters():
            parameter.clamp_(-self.clip, self.clip)


def gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] with x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per sample."""
    eps = torch.rand(len(real), 1, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (gradient,) = torch.autograd.grad(discriminator(mixed).sum(), mixed, create_graph=True)
    return ((gradient.norm(2, dim=1) - 1) ** 2).mean()


@dataclass
class WGANGP(WGANClip):
    """WGAN with L_D += lambda * gradient penalty instead of clipping."""

    name: str = "wgan-gp"
    gp_weight: float = 10.0
    optimizer: OptimizerSettings = field(
        default_factory=lambda: OptimizerSettings("adam", lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9)))

    def d_loss(self, discriminator, real, fake):
        return super().d_loss(discriminator, real, fake) + self.gp_weight * gradient_penalty(
            discriminator, real, fake)

    def after_d_step(self, discriminator):
        pass  # no clipping
