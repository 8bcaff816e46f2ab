"""Metric registry and catalogue. Every built-in metric is registered below, in one block, in the order
results and tables show them; each value it reports is described once (registry.Value)."""

# Imported under other names: the package's attributes `fid`, `class_coverage`, `memorisation` stay the
# submodules of those names.
from evaluator.metrics.class_coverage import class_coverage as _class_coverage
from evaluator.metrics.copying import copying as _copying
from evaluator.metrics.density_coverage import density_coverage as _density_coverage
from evaluator.metrics.fid_metric import fid as _fid
from evaluator.metrics.memorisation import memorisation as _memorisation
from evaluator.metrics.precision_recall import precision_recall_metric as _precision_recall
from evaluator.metrics.registry import (METRICS, SPACE_LABELS, Metric, Value, describe, label, lower_is_better,
                                        markdown_table, register_metric, select, sort_key)

# Public names of the values (torch-fidelity's KEY_METRIC_* convention). Feature metrics are
# reported per space: metric_name("inception", KEY_METRIC_FID) == "inception.fid".
KEY_METRIC_FID = "fid"
KEY_METRIC_PRECISION = "precision"
KEY_METRIC_RECALL = "recall"
KEY_METRIC_DENSITY = "density"
KEY_METRIC_COVERAGE = "coverage"
KEY_METRIC_CLASS_TV = "class_coverage.tv_distance"
KEY_METRIC_DIGITS_PRESENT = "class_coverage.digits_present"
KEY_METRIC_RECOGNISABLE = "class_coverage.recognisable_fraction"
KEY_METRIC_MEAN_CONFIDENCE = "class_coverage.mean_confidence"
KEY_METRIC_NEAR_COPIES = "memorisation.near_copy_fraction"
KEY_METRIC_MEMORISATION_FLAG = "memorisation.flagged"
KEY_METRIC_COPYING = "copying.ct"
KEY_METRIC_COPYING_GAP = "copying.gap"
KEY_METRIC_COPYING_LEAN = "copying.lean"
KEY_METRIC_COPYING_FLAG = "copying.flagged"

KYNKAANNIEMI = "https://arxiv.org/abs/1904.06991"
NAEEM = "https://arxiv.org/abs/2002.09797"
MEEHAN = "https://arxiv.org/abs/2004.05675"


def metric_name(space: str, key: str) -> str:
    """The result name of a feature metric's value in one space."""
    return f"{space}.{key}"


# ---- every registration, in display order -----------------------------------------------------
register_metric("fid", "features", _fid, "Fréchet distance of Gaussian fits", (
    Value(KEY_METRIC_FID, "FID", "lower", "{:.3f}",
          "Fréchet distance between Gaussian fits to the samples' and the reference's features",
          "https://arxiv.org/abs/1706.08500", ranked=True),
))
register_metric("precision_recall", "features", _precision_recall,
                "Kynkäänniemi et al. 2019 improved precision and recall, k-NN balls", (
    Value(KEY_METRIC_PRECISION, "precision", "higher", "{:.4f}",
          "share of samples inside the k-nearest-neighbour ball (k = 3) of some reference image",
          KYNKAANNIEMI, "share of samples", ranked=True),
    Value(KEY_METRIC_RECALL, "recall", "higher", "{:.4f}",
          "share of reference images inside the k-nearest-neighbour ball (k = 3) of some sample",
          KYNKAANNIEMI, "share of reference images", ranked=True),
))
register_metric("density_coverage", "features", _density_coverage,
                "Naeem et al. 2020 density (about 1 for real data) and coverage", (
    Value(KEY_METRIC_DENSITY, "density", "target", "{:.4f}",
          "mean number of reference k-NN balls containing a sample, divided by k (1 for real data)",
          NAEEM, target=1.0, ranked=True),
    Value(KEY_METRIC_COVERAGE, "coverage", "higher", "{:.4f}",
          "share of reference images whose k-NN ball holds at least one sample", NAEEM,
          "share of reference images", ranked=True),
))
register_metric("class_coverage", "samples", _class_coverage,
                "Digit histogram of the recognisable samples, its distance to MNIST's, digits present", (
    Value("tv_distance", "Class TV distance", "lower", "{:.4f}",
          "total variation between the recognisable samples' digit histogram and the test split's",
          "docs/metrics.md"),
    Value("digits_present", "Digits present", "target", "{}",
          "digits holding at least 1% of the recognisable samples", "docs/metrics.md", "digits", target=10),
    Value("mean_confidence", "Mean confidence", "higher", "{:.4f}",
          "mean top softmax probability of the MNIST classifier", "docs/metrics.md"),
    Value("recognisable_fraction", "Recognisable", "higher", "{:.2%}",
          "share of samples whose classifier features lie where real digits' do (Mahalanobis distance)",
          "https://arxiv.org/abs/1807.03888", "share of samples"),
))
register_metric("memorisation", "samples", _memorisation,
                "Near-copies of MNIST digits (either split), through noise, blur, shifts and contrast", (
    Value("near_copy_fraction", "Near-copies", "lower", "{:.2%}",
          "share of samples more similar to an MNIST digit than unseen digits of its class get",
          "docs/metrics.md", "share of samples"),
    Value("nn_similarity_median", "Nearest-MNIST similarity (median)", "none", "{:.4f}",
          "median of each sample's best correlation with an MNIST image (shifts and blurs matched)",
          "docs/metrics.md", "correlation"),
    Value("nn_similarity_max", "Nearest-MNIST similarity (max)", "none", "{:.4f}",
          "the highest such correlation among the samples", "docs/metrics.md", "correlation"),
    Value("flagged", "Memorisation flag", "none", "{}",
          "more than 1% of the samples are near-copies", "docs/metrics.md"),
))
register_metric("copying", "samples", _copying,
                "Set-level data-copying test of the reference (Meehan et al. 2020 C_T)", (
    Value("ct", "Copying C_T", "none", "{:+.2f}",
          "Meehan et al.'s C_T against the test split, the lower of two canonical embeddings: about 0 "
          "for genuine unseen digits, above 0 for a generator, far below 0 for copies of the reference",
          MEEHAN, "Z score"),
    Value("ct_centred", "Copying C_T (centred)", "none", "{:+.2f}",
          "C_T with digits centred and scaled to a fixed size", MEEHAN, "Z score"),
    Value("ct_upright", "Copying C_T (upright)", "none", "{:+.2f}",
          "C_T with digits centred, scaled and turned upright", MEEHAN, "Z score"),
    Value("gap", "Copying gap", "none", "{:+.2f}",
          "C_T minus the same test's C_T with 10,000 training digits in the test split's place, the lower of "
          "two embeddings: about 0 for genuine digits and honest generators, below 0 when the samples favour "
          "the reference; empty when the samples are too few to fill the test's cells (under about 600)",
          "docs/data-copying.md", "Z score"),
    Value("lean", "Copying lean", "none", "{:+.2f}",
          "McNemar's z of the samples unauthentic (Alaa et al. 2022) against the test split alone over those "
          "unauthentic against 10,000 training digits alone, digits centred: below 0 for generators trained "
          "on the training split, above 0 when the samples copy the test split more",
          "docs/data-copying.md", "Z score"),
    Value("flagged", "Copying flag", "none", "{}",
          "C_T or the gap below -3, or the lean above +2: the samples sit closer to the reference than "
          "genuine unseen digits, or than the training digits every team learns from, do", MEEHAN),
))

__all__ = ["METRICS", "SPACE_LABELS", "Metric", "Value", "describe", "label", "lower_is_better", "markdown_table",
           "metric_name", "register_metric", "select", "sort_key",
           *[name for name in dir() if name.startswith("KEY_METRIC_")]]
