"""The fixed-generator rule, checked on what made the samples.

Inside the generation sandbox, `bootstrap.py` records every torch module that runs a forward pass
and, for each one whose output has 784 values per row, the latent rows it was given and its
weights. None of that is trusted: the evaluator replays the recorded latents through the fixed
architecture defined here (Linear 100→256→512→1024→784, LeakyReLU 0.2, tanh) with the recorded
weights, and accepts a sample only if its pixels are a non-decreasing function of one replayed
output (any pixel mapping, clamped or min-max, passes; a different network, a post-processing
filter or an image from elsewhere does not). A forged record can therefore only pass if the
samples really are outputs of a network with the fixed architecture.

What it cannot see is documented in the README ("The rule check").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import stat
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# The fixed generator: one definition, from which every shape below follows.
GENERATOR_LAYERS = ((100, 256), (256, 512), (512, 1024), (1024, 784))
LEAKY_SLOPE = 0.2
LATENT_DIM = GENERATOR_LAYERS[0][0]
OUTPUT_DIM = GENERATOR_LAYERS[-1][1]
EXPECTED_SHAPES = {name: shape for index, (fan_in, fan_out) in enumerate(GENERATOR_LAYERS, 1)
                   for name, shape in ((f"fc{index}.weight", [fan_out, fan_in]), (f"fc{index}.bias", [fan_out]))}
ARCHITECTURE = "Linear " + "→".join(str(n) for n in (LATENT_DIM, *(o for _, o in GENERATOR_LAYERS))) + \
    f", LeakyReLU {LEAKY_SLOPE}, tanh"

# Matching: a sample is traced when, sorted by the replayed output, its pixels never decrease by
# more than this output tolerance (float32 on another device, or float16, moves outputs by far
# less), allowing a handful of pixels for rounding at the edges of the tolerance.
TOLERANCE = 0.02
MAX_OUT_OF_ORDER_PIXELS = 8
# ... and when the output carries the sample's structure: pixels whose outputs lie within the
# tolerance of each other are not ordered by the check above, so an output that barely varies (a
# decoy with its last layer zeroed) would put no constraint on any image. The sample's variance must
# lie between the output's tolerance-wide bins, not within them (the correlation ratio, eta squared,
# of the pixels on the binned output; Pearson 1905). Samples of a trained generator under the
# mappings measured by bench/rule_check_matching.py keep eta squared at 0.9994 or more.
MIN_EXPLAINED = 0.9
# Candidates are found by correlation with views of each replayed output: the output itself (any
# affine mapping: the kit's linear one, per-image min-max), the output clamped at 0 (the course
# template's save_image writes [-1, 0] as black) and its sign (a binarised digit). With the raw
# view alone the template's own clamping left 32 of 10,000 samples outside the 4 best candidates
# (another output correlated better once half the range was black), a false violation; with the
# three views every one of 10,000 samples of the kit's generator ranks its true output first among
# 10,240 outputs under linear, clamped, min-max, gamma and binarising mappings
# (bench/rule_check_matching.py; the 8 candidates leave room for mappings not measured).
VIEWS = (lambda o: o, lambda o: np.maximum(o, 0), lambda o: (o > 0).astype(o.dtype))
CANDIDATES = 8  # best-correlated replayed outputs tried per sample
MATCH_BUDGET_MACS = 300e9  # bounds the sample x output correlation work; beyond it a random subset
SAMPLE_BLOCK, OUTPUT_BLOCK = 2048, 8192

# Bounds on reading the trace (the run could have written anything there).
MAX_TRACE_ENTRIES = 1000
MAX_JSON_BYTES = 1 << 20
MAX_WEIGHTS_BYTES = 16 << 20
MAX_REPORTED = 20


def generator_shapes() -> list[list[int]]:
    """The eight parameter shapes in layer order (what bootstrap.py is told to look for)."""
    return list(EXPECTED_SHAPES.values())


def compare_shapes(shapes: dict[str, list[int]]) -> list[str]:
    """Violations of the fixed architecture by tensor name (a `module.` prefix is accepted)."""
    shapes = {key.removeprefix("module."): value for key, value in shapes.items()}
    problems = [f"missing tensor {k}" for k in EXPECTED_SHAPES if k not in shapes]
    problems += [f"unexpected tensor {k} {v}" for k, v in shapes.items() if k not in EXPECTED_SHAPES]
    problems += [f"{k} has shape {shapes[k]}, expected {v}" for k, v in EXPECTED_SHAPES.items()
                 if k in shapes and shapes[k] != v]
    return problems


def replay(weights: list[np.ndarray], latents: np.ndarray) -> np.ndarray:
    """The fixed generator's output (rows of 784 in [-1, 1]) for recorded weights and latents."""
    import torch

    tensors = [torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for w in weights]
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(latents, dtype=np.float32))
        for layer in range(len(GENERATOR_LAYERS)):
            x = torch.nn.functional.linear(x, tensors[2 * layer], tensors[2 * layer + 1])
            x = torch.tanh(x) if layer == len(GENERATOR_LAYERS) - 1 else \
                torch.nn.functional.leaky_relu(x, LEAKY_SLOPE)
    return x.numpy()


@dataclass
class WeightSet:
    weights: list[np.ndarray]
    latents: np.ndarray
    sha256: str


@dataclass
class Trace:
    modules: list[dict] = field(default_factory=list)
    weight_sets: list[WeightSet] = field(default_factory=list)
    outcome: dict | None = None
    problems: list[str] = field(default_factory=list)  # what could not be read, and why


@dataclass
class RuleCheck:
    status: str  # ok | violation | not_checked (our failure) | not_run (no samples to check)
    violations: list[str] = field(default_factory=list)
    generators: list[dict] = field(default_factory=list)
    checked: int = 0
    traced: int = 0
    uninformative: int = 0
    subset: str | None = None  # why and how many, when only some samples were checked
    weights_sha256: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return {"ok": self.ok, **asdict(self)}


def _clip(text, keep: int = 120) -> str:
    text = str(text)
    return text if len(text) <= keep else text[:keep] + "…"


def _read_small(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes if it is at most `limit` long (never follows a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit + 1)[:limit]


def read_trace(trace_dir: Path, max_bytes: int) -> Trace:
    """Everything the bootstrap wrote, read with bounds on count, size and shape."""
    trace = Trace()
    try:
        with os.scandir(trace_dir) as entries:
            names = []
            for entry in entries:
                names.append(entry.name)
                if len(names) > MAX_TRACE_ENTRIES:
                    trace.problems.append(f"more than {MAX_TRACE_ENTRIES} files in the trace; not read")
                    return trace
    except OSError as err:
        trace.problems.append(f"the trace folder cannot be read ({err.strerror})")
        return trace
    for name in sorted(names):
        if re.fullmatch(r"modules-\d+\.json", name):
            data = _read_small(trace_dir / name, MAX_JSON_BYTES)
            try:
                modules = json.loads(data)["modules"] if data else None
            except (ValueError, KeyError, TypeError):
                modules = None
            if isinstance(modules, list):
                trace.modules += [m for m in modules[:500] if isinstance(m, dict)]
        elif name == "outcome.json":
            data = _read_small(trace_dir / name, MAX_JSON_BYTES)
            try:
                outcome = json.loads(data) if data else None
            except ValueError:
                outcome = None
            trace.outcome = outcome if isinstance(outcome, dict) else None
    budget = max_bytes
    for name in sorted(names):
        match = re.fullmatch(r"weights-(\d+)-(\d+)\.npz", name)
        if not match:
            continue
        weight_set = _read_weight_set(trace_dir, name, f"latents-{match[1]}-{match[2]}.f32", budget, trace)
        if weight_set is not None:
            budget -= weight_set.latents.nbytes
            trace.weight_sets.append(weight_set)
    return trace


def _read_weight_set(trace_dir: Path, weights_name: str, latents_name: str, budget: int,
                     trace: Trace) -> WeightSet | None:
    data = _read_small(trace_dir / weights_name, MAX_WEIGHTS_BYTES)
    if data is None:
        trace.problems.append(f"{weights_name}: unreadable or over {MAX_WEIGHTS_BYTES} bytes")
        return None
    import io

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            weights = [archive[f"p{i}"] for i in range(len(EXPECTED_SHAPES))]
    except Exception as err:  # noqa: BLE001 - anything wrong with the file is a property of the file
        trace.problems.append(f"{weights_name}: not the recorded weights ({type(err).__name__})")
        return None
    if [list(w.shape) for w in weights] != generator_shapes() or \
            not all(w.dtype == np.float32 and np.isfinite(w).all() for w in weights):
        trace.problems.append(f"{weights_name}: shapes or values are not those of the fixed generator")
        return None
    raw = _read_small(trace_dir / latents_name, budget)
    if raw is None:
        trace.problems.append(f"{latents_name}: missing or larger than the trace allowance")
        return None
    rows = len(raw) // (4 * LATENT_DIM)
    latents = np.frombuffer(raw[:rows * 4 * LATENT_DIM], dtype=np.float32).reshape(rows, LATENT_DIM)
    latents = _distinct_rows(latents[np.isfinite(latents).all(axis=1)])
    return WeightSet(weights, latents, hashlib.sha256(data).hexdigest())


def _distinct_rows(latents: np.ndarray) -> np.ndarray:
    """Each latent row once, in first-seen order: a generator wrapped in another module (DataParallel)
    records every batch twice, and duplicates would crowd the candidates of `trace_samples`."""
    if not len(latents):
        return latents
    keys = np.ascontiguousarray(latents).view(np.dtype((np.void, latents.dtype.itemsize * latents.shape[1])))
    _, first = np.unique(keys.ravel(), return_index=True)
    return latents[np.sort(first)]


def _generator_modules(modules: list[dict]) -> list[dict]:
    """Modules whose own forward pass (not one inside another module's) returned 784 values a row."""
    found = []
    for module in modules:
        calls = module.get("outermost_generator_calls")
        if isinstance(calls, int) and calls > 0:
            parameters = [p for p in module.get("parameters", []) if isinstance(p, list) and len(p) == 2]
            found.append({"class": _clip(module.get("class", "?")), "calls": calls,
                          "latent_values": module.get("latent_values"),
                          "parameters": [[_clip(n, 80), [int(d) for d in s][:8]] for n, s in parameters
                                         if isinstance(s, list) and all(isinstance(d, int) for d in s)][:64],
                          "parameter_count": module.get("parameter_count")})
    return found


def _architecture_violations(generator: dict) -> list[str]:
    name = f"generator {generator['class']}"
    problems = []
    if generator["latent_values"] != LATENT_DIM:
        problems.append(f"{name} was called with {generator['latent_values']} latent values a row, "
                        f"expected {LATENT_DIM}")
    expected = Counter(tuple(shape) for shape in generator_shapes())
    remaining = expected.copy()
    extra = []
    for tensor, shape in generator["parameters"]:  # matched by shape: each fixed tensor's is unique
        if remaining[tuple(shape)] > 0:
            remaining[tuple(shape)] -= 1
        else:
            extra.append(f"{tensor} {list(shape)}")
    missing = [str(list(shape)) for shape, count in remaining.items() for _ in range(count)]
    if extra or missing or generator.get("parameter_count") != sum(expected.values()):
        detail = "; ".join(filter(None, [f"unexpected tensors {', '.join(extra[:6])}" if extra else "",
                                         f"missing shapes {', '.join(missing[:6])}" if missing else ""]))
        problems.append(f"{name} does not have the fixed architecture ({ARCHITECTURE}): "
                        f"{detail or 'a different set of tensors'}")
    return problems


def _standardise(rows: np.ndarray) -> np.ndarray:
    rows = rows - rows.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1)


def _in_order(samples: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """For paired rows: True where the sample's pixels are a non-decreasing function of the output,
    within TOLERANCE, for all but MAX_OUT_OF_ORDER_PIXELS pixels."""
    count, width = outputs.shape
    order = np.argsort(outputs, axis=1, kind="stable")
    sorted_out = np.take_along_axis(outputs.astype(np.float64), order, axis=1)
    sorted_px = np.take_along_axis(samples.astype(np.float64), order, axis=1)
    # The smallest pixel at any output clearly (beyond the tolerance) above each position.
    suffix_min = np.minimum.accumulate(sorted_px[:, ::-1], axis=1)[:, ::-1]
    suffix_min = np.concatenate([suffix_min, np.full((count, 1), np.inf)], axis=1)
    offsets = (np.arange(count) * 10.0)[:, None]  # outputs lie in [-1, 1]: rows never overlap
    flat = (sorted_out + offsets).ravel()
    above = np.searchsorted(flat, (sorted_out + TOLERANCE + offsets).ravel(), side="right")
    above = np.minimum(above.reshape(count, width) - (np.arange(count) * width)[:, None], width)
    out_of_order = sorted_px > np.take_along_axis(suffix_min, above, axis=1)
    return out_of_order.sum(axis=1) <= MAX_OUT_OF_ORDER_PIXELS


def explained_share(samples: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """For paired rows: the share of the sample's pixel variance that lies between tolerance-wide
    bins of the output (1: the output's coarse structure fixes the sample; 0: nothing of it)."""
    count, width = outputs.shape
    bins = int(np.ceil(2 / TOLERANCE)) + 1
    index = np.clip(np.floor((outputs.astype(np.float64) + 1) / TOLERANCE), 0, bins - 1).astype(np.int64)
    index += (np.arange(count) * bins)[:, None]
    pixels = samples.astype(np.float64)
    sums = np.bincount(index.ravel(), weights=pixels.ravel(), minlength=count * bins).reshape(count, bins)
    counts = np.bincount(index.ravel(), minlength=count * bins).reshape(count, bins)
    between = (sums ** 2 / np.maximum(counts, 1)).sum(axis=1) - pixels.sum(axis=1) ** 2 / width
    total = ((pixels - pixels.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    return np.where(total > 0, between / np.where(total > 0, total, 1), 0.0)


def _explains(samples: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """For paired rows: True where the output explains the sample (in order, and carrying it)."""
    return _in_order(samples, outputs) & (explained_share(samples, outputs) >= MIN_EXPLAINED)


def trace_samples(images: np.ndarray, weight_sets: list[WeightSet],
                  rng: np.random.Generator | None = None) -> tuple[int, int, int]:
    """(checked, traced, uninformative): how many samples a replayed fixed-generator output explains.

    When the run recorded more latent rows than the matching budget covers, a random subset of the
    samples is checked, drawn here, after the run, from fresh operating-system entropy (`rng` only
    in tests): nothing the team's code saw (its seed, its command line) predicts which."""
    pixels = images.reshape(len(images), -1).astype(np.float32)
    informative = np.flatnonzero(pixels.max(axis=1) > pixels.min(axis=1))
    rows = sum(len(w.latents) for w in weight_sets)
    if not len(informative):
        return 0, 0, len(images)
    affordable = int(MATCH_BUDGET_MACS // max(rows * OUTPUT_DIM * len(VIEWS), 1))
    if rows and affordable < len(informative):
        rng = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
        informative = np.sort(rng.choice(informative, max(affordable, 1), replace=False))
    checked = len(informative)
    uninformative = len(images) - int((pixels.max(axis=1) > pixels.min(axis=1)).sum())
    if not rows:
        return checked, 0, uninformative
    standard = _standardise(pixels[informative])
    best_score = np.full((checked, CANDIDATES), -np.inf, dtype=np.float32)
    best_where = np.zeros((checked, CANDIDATES, 2), dtype=np.int64)  # (weight set, row)
    for set_index, weight_set in enumerate(weight_sets):
        for start in range(0, len(weight_set.latents), OUTPUT_BLOCK):
            outputs = replay(weight_set.weights, weight_set.latents[start:start + OUTPUT_BLOCK])
            views = [_standardise(view(outputs)) for view in VIEWS]
            for block in range(0, checked, SAMPLE_BLOCK):
                scores = np.max([standard[block:block + SAMPLE_BLOCK] @ view.T for view in views], axis=0)
                take = min(CANDIDATES, scores.shape[1])
                top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
                merged_score = np.concatenate([best_score[block:block + SAMPLE_BLOCK],
                                               np.take_along_axis(scores, top, axis=1)], axis=1)
                where = np.stack([np.full_like(top, set_index), top + start], axis=2)
                merged_where = np.concatenate([best_where[block:block + SAMPLE_BLOCK], where], axis=1)
                keep = np.argsort(-merged_score, axis=1)[:, :CANDIDATES]
                best_score[block:block + SAMPLE_BLOCK] = np.take_along_axis(merged_score, keep, axis=1)
                best_where[block:block + SAMPLE_BLOCK] = np.take_along_axis(merged_where, keep[..., None], axis=1)
    traced = np.zeros(checked, dtype=bool)
    for rank in range(CANDIDATES):
        todo = np.flatnonzero(~traced & np.isfinite(best_score[:, rank]))
        if not len(todo):
            break
        outputs = np.empty((len(todo), OUTPUT_DIM), dtype=np.float32)
        for set_index, weight_set in enumerate(weight_sets):
            mine = best_where[todo, rank, 0] == set_index
            if mine.any():
                outputs[mine] = replay(weight_set.weights, weight_set.latents[best_where[todo[mine], rank, 1]])
        traced[todo] = _explains(pixels[informative[todo]], outputs)
    return checked, int(traced.sum()), uninformative


def check_rule(images: np.ndarray | None, trace: Trace) -> RuleCheck:
    """The rule check's verdict from a run's trace (and its samples, when they validated).

    The samples decide: a run whose every checked sample a replayed fixed-generator output explains
    complies, however its code wraps the generator (rejection inside a module's forward, a
    generator reloaded for every batch). The modules' shapes only explain a failure."""
    generators = _generator_modules(trace.modules)
    result = RuleCheck("ok", generators=generators,
                       weights_sha256=[w.sha256 for w in trace.weight_sets])
    architecture = [problem for generator in generators for problem in _architecture_violations(generator)]
    if images is None:  # no samples (the run failed): nothing to decide on, whatever the modules were
        result.status = "not_run"
        return result
    result.checked, result.traced, result.uninformative = trace_samples(images, trace.weight_sets)
    informative = len(images) - result.uninformative
    if result.checked < informative:
        result.subset = (f"{result.checked:,} of {informative:,} samples checked, drawn at random after the run: "
                         f"the run recorded {sum(len(w.latents) for w in trace.weight_sets):,} latent rows, "
                         f"more than the matching budget covers")
    untraced = result.checked - result.traced
    if untraced:
        if not trace.weight_sets:
            result.violations.append("no torch module produced the samples: the fixed generator must run "
                                     "as a torch.nn.Module")
        result.violations.append(f"{untraced} of the {result.checked} samples checked are not outputs "
                                 f"of the fixed generator ({ARCHITECTURE}) as it ran: no recorded "
                                 f"forward pass explains them")
        result.violations += architecture
    if trace.problems and result.violations:
        result.violations.append("the trace was incomplete: " + "; ".join(_clip(p) for p in trace.problems[:3]))
    result.violations = result.violations[:MAX_REPORTED]
    result.status = "violation" if result.violations else "ok"
    return result
