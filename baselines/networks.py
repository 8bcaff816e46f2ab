"""Networks the baselines train beside the fixed Generator."""

from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    """The course template's MLP 784 -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2), raw output.

    The output is a logit (vanilla, DRS), a critic value (WGAN) or V(x) (f-GAN); each objective
    applies its own output function.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width_in, width_out in ((784, 1024), (1024, 512), (512, 256)):
            layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2)]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(256, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x.view(len(x), -1))).squeeze(1)


class ImportanceNetwork(nn.Module):
    """w(z) >= 0 for latent reweighting (Issenhuth et al. 2022): 100 -> 400 x3 -> 1, ReLU output.

    A sigmoid output would be wrong: with w <= 1 and E[w] = 1, w is forced to 1 everywhere.
    """

    def __init__(self, latent_dim: int = 100, width: int = 400) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 1), nn.ReLU(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)
