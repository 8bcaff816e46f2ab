"""The quick evaluation: samples folder -> validation -> features -> reference -> metrics -> result."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluator import metrics as metric_registry
from evaluator import mnist, results
from evaluator.features import make_extractor
from evaluator.metrics import copying, knn
from evaluator.metrics.context import FeatureContext, SampleContext
from evaluator.reference import REFERENCE_SPLIT, load_reference
from evaluator.reporting import Reporter  # noqa: F401 - re-exported: library users import it from here
from evaluator.samples import DEFAULT_COUNT, BackgroundValidation, validate_samples


@dataclass
class EvaluationOptions:
    """Everything that changes an evaluation's numbers or where it reads data."""

    expected_count: int = DEFAULT_COUNT
    data_root: str | None = None
    cache_dir: str | None = None
    feature_spaces: tuple[str, ...] = ("mnist",)
    metrics: tuple[str, ...] | None = None  # None: every registered metric
    k: int = 3
    knn_backend: str = "auto"
    device: str = "cpu"
    reference_limit: int | None = None  # smoke tests only: first K test images as reference
    bootstrap: int | None = None  # replicates for the intervals (None: by dimension, 0: none)


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 4)


def new_result(directory: str, options: EvaluationOptions, timings: Timings) -> dict[str, Any]:
    """A result skeleton (schema v1) before any stage has run."""
    selected = metric_registry.select(list(options.metrics) if options.metrics else None)
    return {
        "schema_version": results.SCHEMA_VERSION,
        "created": results.utc_now(),
        "status": "ok",
        "samples": {"directory": directory, "expected_count": options.expected_count,
                    "count": 0, "sha256": None},
        "validation": None,
        "metrics": {},
        "details": {},
        "flags": [],
        "feature_extractors": {},
        "reference": None,
        "options": {"k": options.k, "knn_backend": options.knn_backend, "device": options.device,
                    "reference_limit": options.reference_limit,
                    "metrics": [metric.name for metric in selected],
                    "feature_spaces": list(options.feature_spaces)},
        "timings_s": timings.seconds,
        "environment": results.package_versions(),
    }


def require_data(options: EvaluationOptions) -> None:
    """Fail fast, before minutes of work, if the data the selected metrics need is absent."""
    mnist.require_split("test", options.data_root)
    selected = metric_registry.select(list(options.metrics) if options.metrics else None)
    if any(metric.name in ("memorisation", "copying") for metric in selected):
        mnist.require_split("train", options.data_root)


def evaluate_samples(samples_dir: str | Path, options: EvaluationOptions | None = None,
                     reporter: Reporter | None = None,
                     validation: BackgroundValidation | None = None) -> dict[str, Any]:
    """Evaluate a folder of PNGs; returns the result dict (status `ok` or `invalid_samples`). With
    `validation` (started on `samples_dir` before torch was imported) its outcome is used, and the
    `validate` timing is the time waited for it."""
    options = options or EvaluationOptions()
    reporter = reporter or Reporter()
    if validation is not None and (validation.directory != Path(samples_dir)
                                   or validation.expected_count != options.expected_count):
        raise ValueError(f"the background validation is of {validation.directory} for "
                         f"{validation.expected_count} files, not of {samples_dir} for {options.expected_count}")
    timings = Timings()
    started = time.perf_counter()
    result = new_result(str(samples_dir), options, timings)
    require_data(options)
    with timings.measure("validate"):
        advance = reporter.stage("validate", options.expected_count)
        if validation is not None:
            images, report = validation.result(progress=advance)
        else:
            images, report = validate_samples(samples_dir, options.expected_count, progress=advance)
    reporter.done("validate", timings.seconds["validate"], f"{report.found_count} entries")
    result["validation"] = report.to_dict()
    result["samples"].update(count=report.found_count, sha256=report.sha256)
    if images is None:
        result["status"] = "invalid_samples"
    else:
        score_images(images, options, reporter, result, timings)
    timings.seconds["total"] = round(time.perf_counter() - started, 4)
    return result


def score_images(images: np.ndarray, options: EvaluationOptions | None = None,
                 reporter: Reporter | None = None, result: dict | None = None,
                 timings: Timings | None = None) -> dict[str, Any]:
    """Every selected metric of uint8 images (N, 28, 28); fills and returns `result`."""
    options = options or EvaluationOptions()
    reporter = reporter or Reporter()
    timings = timings or Timings()
    result = result if result is not None else {"metrics": {}, "details": {}, "flags": [],
                                                "feature_extractors": {}, "options": {}}
    selected = metric_registry.select(list(options.metrics) if options.metrics else None)
    probabilities = None
    class_reference = None
    mnist_features = reference_features = None  # the classifier's own features, for class coverage
    for space in options.feature_spaces:
        with timings.measure(f"features.{space}"):
            extractor = make_extractor(space, options.device)
            advance = reporter.stage(f"features ({space})", len(images))
            extracted = extractor(images, progress=advance)
        reporter.done(f"features ({space})", timings.seconds[f"features.{space}"])
        with timings.measure(f"reference.{space}"):
            # Featurising the reference (only on a cache miss) is long for Inception on CPU.
            full = mnist.SPLIT_SIZES[REFERENCE_SPLIT]
            advance = reporter.stage(f"reference ({space})", min(options.reference_limit or full, full))
            reference = load_reference(extractor, options.data_root, options.cache_dir, (options.k,),
                                       options.knn_backend, options.device, options.reference_limit,
                                       progress=advance)
        reporter.done(f"reference ({space})", timings.seconds[f"reference.{space}"],
                      f"cache {reference.cache_status}")
        result["feature_extractors"][space] = {
            "id": extractor.id, "weights_sha256": extractor.weights_sha256, "dim": extractor.dim,
        }
        if getattr(extractor, "last_backend", None):
            result["feature_extractors"][space]["backend"] = extractor.last_backend
        result["reference"] = {
            "id": reference.id, "count": len(reference.stats.features),
            "data_sha256": reference.key["data_sha256"],
        }
        if getattr(extracted, "probabilities", None) is not None and probabilities is None:
            probabilities, class_reference = extracted.probabilities, reference.class_histogram
            mnist_features, reference_features = extracted.features, reference.stats.features
        features = np.ascontiguousarray(extracted.features, dtype=np.float32)
        backend = knn.make_backend(options.knn_backend, features.shape[1], options.device)
        result["options"].setdefault("knn_backend_used", {})[space] = backend.name
        context = FeatureContext(space, features, reference.stats, options.k, backend)
        for metric in (m for m in selected if m.scope == "features"):
            _run_metric(metric, context, f"{space}.", result, timings, reporter)
        _bootstrap(context, space, options, result, timings, reporter)

    sample_metrics = [m for m in selected if m.scope == "samples"]
    if sample_metrics:
        if probabilities is None:  # class coverage needs the MNIST classifier
            extractor = make_extractor("mnist", options.device)
            extracted = extractor(images)
            probabilities, mnist_features = extracted.probabilities, extracted.features
            reference = load_reference(extractor, options.data_root, options.cache_dir, (options.k,),
                                       options.knn_backend, options.device, options.reference_limit)
            class_reference, reference_features = reference.class_histogram, reference.stats.features
        labels = mnist.load_split(REFERENCE_SPLIT, options.data_root).labels[:len(reference_features)]
        context = SampleContext(images, probabilities, class_reference,
                                mnist.resolve_root(options.data_root), options.cache_dir,
                                options.device, mnist_features, reference_features, labels)
        for metric in sample_metrics:
            _run_metric(metric, context, f"{metric.name}.", result, timings, reporter)

    if result["metrics"].get("copying.flagged"):
        ct, gap = result["metrics"]["copying.ct"], result["metrics"].get("copying.gap")
        lean = result["metrics"]["copying.lean"]
        if ct < copying.FLAG_BELOW:
            why = f"than genuine unseen digits do: C_T {ct:+.1f}, below {copying.FLAG_BELOW:g}"
        elif gap is not None and gap < copying.GAP_FLAG_BELOW:
            why = (f"than to the training digits, beyond what genuine digits and honest generators show: "
                   f"the gap {gap:+.1f}, below {copying.GAP_FLAG_BELOW:g}")
        else:
            why = (f"than to the training digits: more of them are unauthentic copies of test digits than of "
                   f"training digits (the lean {lean:+.1f}, above {copying.LEAN_FLAG_ABOVE:g}), where "
                   f"generators trained on the training split lean below 0")
        result["flags"].append({"code": "data_copying",
                                "message": f"the samples sit closer to the MNIST test split (the reference) {why}"})
    if result["metrics"].get("memorisation.flagged"):
        fraction = result["metrics"]["memorisation.near_copy_fraction"]
        result["flags"].append({
            "code": "memorisation",
            "message": f"{fraction:.1%} of samples are near-copies of MNIST digits",
        })
    return result


def _bootstrap(context: FeatureContext, space: str, options: EvaluationOptions, result: dict, timings: Timings,
               reporter: Reporter) -> None:
    """95% intervals of the space's FID, precision, recall, density and coverage (uncertainty.py)."""
    from evaluator.metrics import uncertainty

    replicates = uncertainty.replicate_count(context.fake.shape[1], options.device, options.bootstrap)
    wanted = [f"{space}.{key}" for key in ("fid", "precision", "recall", "density", "coverage")]
    if replicates == 0 or not all(name in result["metrics"] for name in wanted):
        return
    with timings.measure(f"bootstrap.{space}"):
        reporter.stage(f"bootstrap ({space}, {replicates} replicates)")
        found = uncertainty.add_intervals(uncertainty.bootstrap(context, space, replicates, options.device),
                                          result["metrics"])
    reporter.done(f"bootstrap ({space}, {replicates} replicates)", timings.seconds[f"bootstrap.{space}"])
    block = result.setdefault("uncertainty", {
        "method": "bootstrap over the generated samples, reference fixed; centred percentile intervals",
        "level": uncertainty.LEVEL, "seed": uncertainty.SEED, "replicates": {}, "intervals": {}, "samples": {}})
    block["replicates"][space] = replicates
    for name, entry in found.items():
        block["intervals"][name] = entry["interval"]
        block["samples"][name] = entry["replicates"]


def _run_metric(metric, context, prefix: str, result: dict, timings: Timings,
                reporter: Reporter) -> None:
    label = f"{prefix}{metric.name}" if metric.scope == "features" else metric.name
    with timings.measure(f"metric.{label}"):
        reporter.stage(label)
        values = metric.compute(context)
    reporter.done(label, timings.seconds[f"metric.{label}"])
    for name, value in values.items():
        if value is None:  # not defined for this run (copying.gap with too few samples): left out
            continue
        target = "details" if isinstance(value, (list, dict)) else "metrics"
        result[target][f"{prefix}{name}"] = value
