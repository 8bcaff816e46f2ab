"""The fixed competition Generator, plus the networks that optional sampling tricks use.

Generator: z(100) -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), tanh. Layer names fc1..fc4 are
those of the course template, so existing checkpoints load. Do not change the Generator: the
evaluator checks the network whose forward pass makes the samples, not only checkpoints/G.pth.
"""

import torch
import torch.nn.functional as F
from torch import nn

LATENT_DIM = 100


class Generator(nn.Module):
    def __init__(self, g_output_dim: int = 784) -> None:
        super().__init__()
        self.fc1 = nn.Linear(LATENT_DIM, 256)
        self.fc2 = nn.Linear(self.fc1.out_features, self.fc1.out_features * 2)
        self.fc3 = nn.Linear(self.fc2.out_features, self.fc2.out_features * 2)
        self.fc4 = nn.Linear(self.fc3.out_features, g_output_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc1(z), 0.2)
        x = F.leaky_relu(self.fc2(x), 0.2)
        x = F.leaky_relu(self.fc3(x), 0.2)
        return torch.tanh(self.fc4(x))


class Discriminator(nn.Module):
    """The course template's MLP 784 -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2), raw output
    (a logit, a critic value or an f-GAN V(x), depending on how it was trained)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        layers = []
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

    def __init__(self, latent_dim: int = LATENT_DIM, width: int = 400) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 1), nn.ReLU(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


def _load_state(path: str, device: torch.device) -> dict:
    state = torch.load(path, map_location=device, weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_generator(path: str, device: torch.device) -> Generator:
    """Load G.pth onto `device`, accepting a `module.` prefix left by DataParallel."""
    generator = Generator(g_output_dim=784)
    generator.load_state_dict(_load_state(path, device))
    return generator.to(device).eval()


def load_network(network: nn.Module, path: str, device: torch.device) -> nn.Module:
    """Load any of the helper networks above from a plain state_dict."""
    network.load_state_dict(_load_state(path, device))
    return network.to(device).eval()
