"""Vanilla GAN with the non-saturating generator loss (BCE on logits, written with softplus)."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from baselines.objectives.base import Objective


@dataclass
class Vanilla(Objective):
    """L_D = BCE(D(x), 1) + BCE(D(G(z)), 0);  L_G = BCE(D(G(z)), 1)."""

    name: str = "vanilla"
    # Dropout in D kept vanilla from degrading after ~20 epochs (a course team's finding, and ours).
    d_dropout: float = 0.3

    def d_loss(self, discriminator, real, fake):
        # BCEWithLogits(v, 1) = softplus(-v), BCEWithLogits(v, 0) = softplus(v).
        return F.softplus(-discriminator(real)).mean() + F.softplus(discriminator(fake)).mean()

    def g_loss(self, discriminator, generator, z):
        return F.softplus(-discriminator(generator(z))).mean()
