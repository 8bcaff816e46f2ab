"""The fixed competition Generator: z(100) -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), tanh.

Layer names fc1..fc4 are those of the course template, so existing checkpoints load.
Do not change this file: the evaluator checks the tensor shapes of checkpoints/G.pth.
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


def load_generator(path: str, device: torch.device) -> Generator:
    """Load G.pth onto `device`, accepting a `module.` prefix left by DataParallel."""
    state = torch.load(path, map_location=device, weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {key.removeprefix("module."): value for key, value in state.items()}
    generator = Generator(g_output_dim=784)
    generator.load_state_dict(state)
    return generator.to(device).eval()
