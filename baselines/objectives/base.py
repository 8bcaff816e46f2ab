"""What an objective provides to the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class OptimizerSettings:
    name: str = "adam"  # adam | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)

    def build(self, parameters, lr: float, betas: tuple[float, float] | None = None,
              weight_decay: float = 0.0) -> torch.optim.Optimizer:
        if self.name == "adam":
            return torch.optim.Adam(parameters, lr=lr, betas=tuple(betas or self.betas), weight_decay=weight_decay)
        if self.name == "rmsprop":
            return torch.optim.RMSprop(parameters, lr=lr, weight_decay=weight_decay)
        raise ValueError(f"unknown optimizer {self.name!r}")


@dataclass
class Objective:
    """A GAN objective: the two losses plus the settings that make it train."""

    name: str = "base"
    n_critic: int = 1
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    grad_clip: float | None = None  # clip D's gradient norm (an f-GAN KL stabiliser)
    d_dropout: float = 0.0

    def d_loss(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, discriminator: nn.Module, generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Hook run after each discriminator update (e.g. weight clipping)."""
