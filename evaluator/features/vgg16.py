"""Feature extractor `vgg16`: the fc2 layer (4,096-d, after its ReLU) of torchvision's ImageNet
VGG-16, the space in which Kynkäänniemi et al. 2019 and the course's platform computed precision
and recall, so that these numbers can be put beside theirs.

Weights are never downloaded here: they are read from the torch hub cache when a user has them
(`vgg16-397923af.pth`, what `torchvision.models.vgg16(weights="IMAGENET1K_V1")` fetches), checked
against the SHA-256 prefix in their name. Input: grayscale to three equal channels in [0, 1],
bilinear resize to 224 (torch's, `align_corners=False`), ImageNet mean and standard deviation.
VGG-16 costs 15.5 GFLOPs an image: run it on a GPU (`--gpu`); on 2 CPU cores 10K samples plus the
10K reference take the better part of an hour.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evaluator.errors import WeightsError

FEATURE_DIM = 4096
INPUT_SIZE = 224
WEIGHTS_FILE = "vgg16-397923af.pth"  # torchvision's IMAGENET1K_V1; the suffix is its SHA-256 prefix
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESSING = "rgb, torch-bilinear-224, imagenet mean/std"


def weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def not_found_message() -> str:
    return (f"VGG-16 weights not found at {weights_path()}. On a machine with internet access, run\n"
            f"  python -c \"import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')\"\n"
            f"once (it saves {WEIGHTS_FILE} there), or copy that file into the folder; TORCH_HOME moves "
            f"the cache.")


def fc2_network(state: dict | None = None) -> nn.Module:
    """VGG-16 up to fc2 and its ReLU (the classifier's first five layers; dropout is inert in eval)."""
    from torchvision.models import vgg16

    full = vgg16(weights=None)
    if state is not None:
        full.load_state_dict(state)
    return nn.Sequential(full.features, full.avgpool, nn.Flatten(), *list(full.classifier)[:5]).eval()


def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 3, 224, 224), normalised as torchvision's ImageNet models expect."""
    pixels = images_uint8.to(torch.float32).div(255.0).unsqueeze(1)
    resized = torch.nn.functional.interpolate(pixels, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                              align_corners=False, antialias=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (resized.expand(-1, 3, -1, -1) - mean) / std


@dataclass
class VGGFeatures:
    features: np.ndarray  # float32 (N, dim)
    probabilities: None = None


class VGG16FeatureExtractor:
    """Feature extractor `vgg16`. `network` replaces the real one (tests use a small random network
    to run this code path where the weights are absent)."""

    name = "vgg16"
    preprocessing = PREPROCESSING

    def __init__(self, device: str = "cpu", batch_size: int = 50, network: nn.Module | None = None,
                 dim: int = FEATURE_DIM) -> None:
        if network is None:
            path = weights_path()
            if not path.is_file():
                raise WeightsError(not_found_message())
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if not digest.startswith(WEIGHTS_FILE.split("-")[1].split(".")[0]):
                raise WeightsError(f"{path} does not match the SHA-256 prefix in its name: a damaged download?")
            network = fc2_network(torch.load(path, map_location="cpu", weights_only=True))
            self.weights_sha256 = digest
        else:
            self.weights_sha256 = hashlib.sha256(b"".join(
                p.detach().cpu().numpy().tobytes() for p in network.parameters())).hexdigest()
        self.network = network.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.dim = dim

    @property
    def id(self) -> str:
        return f"{self.name}-fc2-{self.weights_sha256[:12]}"

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, progress=None) -> VGGFeatures:
        tensor = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
        out = []
        for start in range(0, len(tensor), self.batch_size):
            batch = preprocess(tensor[start:start + self.batch_size]).to(self.device)
            out.append(self.network(batch).float().cpu())
            if progress is not None:
                progress(len(batch))
        features = torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)
        return VGGFeatures(features)
