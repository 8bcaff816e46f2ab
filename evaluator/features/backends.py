"""Ways to run the (one-plane) FID Inception network on a fixed batch shape.

`eager` is the plain PyTorch module. `compile` is TorchInductor with frozen weights (batch norm
folded; needs a C++ compiler). `openvino` converts the module to OpenVINO and runs it on the CPU
in float32 (`pip install -e ".[inception]"` installs it); on this project's 2-core CPU it is the
fastest (bench/). Each builder returns a function from a float32 (B, 1, 299, 299) batch to
(B, 2048) features; the extractor pads the last batch so that every call has the same shape.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable

import torch

Forward = Callable[[torch.Tensor], torch.Tensor]

BACKENDS = ("eager", "compile", "openvino")
# What each accelerated backend falls back to when it cannot be built or run.
FALLBACK = {"openvino": "compile", "compile": "eager"}


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def build_compile(network: torch.nn.Module, batch_shape: tuple[int, ...]) -> Forward:
    del batch_shape  # compiled for the first shape it sees (dynamic=False)
    compiled = torch.compile(network, dynamic=False, options={"freezing": True})
    return lambda batch: compiled(batch.contiguous(memory_format=torch.channels_last))


def build_openvino(network: torch.nn.Module, batch_shape: tuple[int, ...]) -> Forward:
    import openvino as ov

    example = torch.zeros((1, *batch_shape[1:]))  # tracing runs the network once: one image is enough
    with warnings.catch_warnings():  # tracing warnings from torch.jit
        warnings.simplefilter("ignore")
        model = ov.convert_model(network, example_input=example)
    model.reshape({model.inputs[0]: ov.PartialShape(list(batch_shape))})
    # float32 explicitly: on CPUs with bf16 units OpenVINO would otherwise infer in bf16.
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                      "INFERENCE_NUM_THREADS": torch.get_num_threads(),
                                                      "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def forward(batch: torch.Tensor) -> torch.Tensor:
        output = request.infer({0: batch.contiguous().numpy()})[0]
        return torch.from_numpy(output.copy())

    return forward


BUILDERS: dict[str, Callable[[torch.nn.Module, tuple[int, ...]], Forward]] = {
    "compile": build_compile, "openvino": build_openvino}
