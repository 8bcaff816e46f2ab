"""Mode-seeking GAN (Mao et al. 2019) on top of the vanilla objective."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from baselines.objectives.vanilla import Vanilla


def mode_seeking_ratio(generator, z1: torch.Tensor, z2: torch.Tensor):
    """(mean |G(z2) - G(z1)| / mean |z2 - z1|, G(z1))."""
    fake1, fake2 = generator(z1), generator(z2)
    ratio = (fake2 - fake1).abs().mean() / (z2 - z1).abs().mean()
    return ratio, fake1, fake2


@dataclass
class MSGAN(Vanilla):
    """L_G = vanilla L_G on both batches + lambda / (ratio + eps): small ratios (collapse) cost more."""

    name: str = "msgan"
    d_dropout: float = 0.0
    weight: float = 1.0
    eps: float = 1e-5

    def g_loss(self, discriminator, generator, z):
        z2 = torch.randn_like(z)
        ratio, fake1, fake2 = mode_seeking_ratio(generator, z, z2)
        adversarial = F.softplus(-discriminator(torch.cat([fake1, fake2]))).mean()
        return adversarial + self.weight / (ratio + self.eps)
