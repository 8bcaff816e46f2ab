"""Verdict classification from evidence, the requirements comparison, and the replay rule check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluator.sandbox.requirements import MAX_LINES, check_requirements, summarise
from evaluator.sandbox.rule_check import (EXPECTED_SHAPES, LATENT_DIM, Trace, WeightSet, check_rule,
                                          compare_shapes, generator_shapes, replay, trace_samples)
from evaluator.sandbox.runner import RunOutcome
from evaluator.sandbox.verdict import Verdict, classify


def outcome(**kwargs) -> RunOutcome:
    defaults = dict(exit_code=0, signal=None, timed_out=False, oom_killed=False, wall_time_s=1.0,
                    log_tail="", log_bytes=0, limits_in_force={"memory": "cgroup v1 1 bytes"})
    return RunOutcome(**{**defaults, **kwargs})


def program(kind=None, type_="RuntimeError", message="boom", line=None) -> dict:
    return {"exception": {"type": type_, "message": message, "cuda": kind, "team_line": line}}


@pytest.mark.parametrize("run,gpu,record,verdict", [
    (outcome(), False, None, None),
    (outcome(timed_out=True, signal=9, exit_code=None), False, None, Verdict.TIMEOUT),
    (outcome(oom_killed=True, exit_code=None, signal=9), False, None, Verdict.OUT_OF_MEMORY),
    (outcome(exit_code=1), False, program("cuda_call"), Verdict.NEEDS_GPU),
    (outcome(exit_code=1), False, program("cuda_checkpoint"), Verdict.NEEDS_GPU),
    (outcome(exit_code=1), True, program("cuda_call"), Verdict.CRASH),  # a GPU run: a real crash
    (outcome(exit_code=None, signal=11), False, None, Verdict.CRASH),
    (outcome(exit_code=2, log_tail="usage: generate.py [-h]\nerror: unrecognized arguments"), False, None,
     Verdict.CRASH),
    (outcome(exit_code=1, setup_error="bubblewrap could not set up the sandbox: Can't mount proc"), False,
     None, Verdict.SANDBOX_ERROR),
    (outcome(exit_code=1, limits_in_force={"memory": "RLIMIT_AS 100 bytes"}), False,
     program(type_="MemoryError"), Verdict.OUT_OF_MEMORY),
])
def test_classify(run, gpu, record, verdict):
    decided = classify(run, gpu, timeout_s=60, program=record)
    assert (decided[0] if decided else None) == verdict


@pytest.mark.parametrize("printed", [
    "bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
    "AssertionError: Torch not compiled with CUDA enabled",
    "RuntimeError: Found no NVIDIA driver on your system.",
    "MemoryError\nkilled for exceeding the memory limit",
])
def test_printed_text_never_decides_a_verdict(printed):
    """Team output that imitates our evidence is only quoted: the verdict stays CRASH."""
    verdict, reason = classify(outcome(exit_code=1, log_tail=printed), False, 60, program(type_="SystemExit"))
    assert verdict is Verdict.CRASH


def test_needs_gpu_quotes_the_team_line_and_names_the_fix():
    line = {"file": "generate.py", "line": 12, "code": "x = x.cuda()"}
    reason = classify(outcome(exit_code=1), False, 60, program("cuda_call", line=line))[1]
    assert "generate.py:12 `x = x.cuda()`" in reason and "torch.cuda.is_available()" in reason
    reason = classify(outcome(exit_code=1), False, 60, program("cuda_checkpoint", line=line))[1]
    assert "map_location" in reason


def test_crash_reason_names_the_signal_and_the_exception():
    assert classify(outcome(exit_code=None, signal=11), False, 60)[1] == "killed by SIGSEGV"
    reason = classify(outcome(exit_code=3, log_tail="Traceback\nValueError: bad\n"), False, 60)[1]
    assert reason == "exit code 3: ValueError: bad"
    record = program(type_="ValueError", message="bad", line={"file": "model.py", "line": 3, "code": "f()"})
    assert classify(outcome(exit_code=1), False, 60, record)[1] == "exit code 1: ValueError: bad (at model.py:3 `f()`)"


def test_requirements_grouped_by_severity(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("numpy\ntorch==1.0.0\ndatetime==4.3.0\n--extra-index-url https://x\nnot a req!!\n"
                    "pywin32; sys_platform == 'win32'\n# comment\n")
    entries = check_requirements(path)
    found = {(e["package"], e["problem"], e["severity"]) for e in entries}
    assert ("torch", "conflict", "info") in found and ("datetime", "missing", "warning") in found
    assert not any(e["package"] in ("numpy", "pywin32") for e in entries)
    assert sum(1 for e in entries if e["problem"] == "unparsed") == 2
    severity, line = summarise(entries)
    assert severity == "warning" and "1 missing" in line and "torch==1.0.0" in line
    assert summarise(check_requirements(tmp_path / "absent.txt")) is None
    path.write_text("torch==0.1\n")
    assert summarise(check_requirements(path))[0] == "info"  # a differing pin is information


def test_packages_of_torchs_own_build_are_never_asked_for(tmp_path):
    """A frozen CUDA environment's wheels cannot help this torch: noted, never installed."""
    path = tmp_path / "requirements.txt"
    path.write_text("nvidia-cublas-cu12==12.1.3.1\nnvidia_cudnn_cu12==8.9.2.26\ntriton==2.1.0\n"
                    "cuda-bindings==12.0\ndatetime==4.3.0\n")
    entries = check_requirements(path)
    build = [e for e in entries if e["package"] != "datetime"]  # those this torch has are pins that differ
    assert len([e for e in build if e["problem"] == "torch_build"]) >= 2  # the cu12 wheels
    assert all(e["problem"] in ("torch_build", "conflict") and e["severity"] == "info" and "requirement" not in e
               for e in build)
    assert [e["package"] for e in entries if e["problem"] == "missing"] == ["datetime"]
    severity, line = summarise(entries)
    assert "package(s) of torch's own build never installed (nvidia-cublas-cu12" in line
    assert "not installed: installation is off" in line and severity == "warning"


def test_the_requirements_note_says_what_was_installed(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("termcolor==2.4.0\n")
    installed = {"folder": "abc", "packages": [{"name": "termcolor", "version": "2.4.0"}], "bytes": 23_000,
                 "skipped": []}
    severity, line = summarise(check_requirements(path), installed)
    assert "installed 1 package(s), 23 kB (termcolor 2.4.0)" in line and "not installed" not in line
    assert severity == "info"


def test_requirements_are_bounded(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("".join(f"package-{i}==1.0\n" for i in range(100_000)))
    entries = check_requirements(path)
    assert len(entries) <= MAX_LINES + 1 and entries[-1]["problem"] == "cut"
    assert len(str(entries)) < 200_000


def test_compare_shapes():
    assert compare_shapes(EXPECTED_SHAPES) == []
    assert compare_shapes({f"module.{k}": v for k, v in EXPECTED_SHAPES.items()}) == []
    latent_150 = {**EXPECTED_SHAPES, "fc1.weight": [256, 150]}
    assert compare_shapes(latent_150) == ["fc1.weight has shape [256, 150], expected [256, 100]"]


def test_the_kit_generator_is_the_one_checked():
    """One fact in one place: the kit's model.py and the rule check describe the same network."""
    from baselines.kit import Generator

    kit = Generator()
    assert {k: list(v.shape) for k, v in kit.state_dict().items()} == EXPECTED_SHAPES
    weights = [p.detach().numpy() for p in kit.parameters()]
    z = torch.randn(5, LATENT_DIM)
    with torch.no_grad():
        expected = kit(z).numpy()
    np.testing.assert_allclose(replay(weights, z.numpy()), expected, atol=1e-6)


@pytest.fixture(scope="module")
def witness():
    weights = random_weights(0)
    latents = np.random.default_rng(0).standard_normal((300, LATENT_DIM)).astype(np.float32)
    return WeightSet(weights, latents, "0" * 64), replay(weights, latents)


def random_weights(seed: int) -> list[np.ndarray]:
    """Scaled like a trained generator's (outputs spread over [-1, 1], not saturated)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(shape) / np.sqrt(shape[-1]) * (1.0 if len(shape) == 2 else 0.1)).astype(np.float32)
            for shape in generator_shapes()]


def to_pixels(outputs: np.ndarray, mapping: str) -> np.ndarray:
    if mapping == "linear":
        pixels = (outputs + 1) * 127.5
    elif mapping == "clamp":  # the course template's save_image without normalize
        pixels = np.clip(outputs * 255 + 0.5, 0, 255)
    else:  # per-image min-max (save_image normalize=True)
        low, high = outputs.min(axis=1, keepdims=True), outputs.max(axis=1, keepdims=True)
        pixels = (outputs - low) / (high - low) * 255
    return np.round(pixels).astype(np.uint8).reshape(-1, 28, 28)


@pytest.mark.parametrize("mapping", ["linear", "clamp", "minmax"])
def test_any_monotone_pixel_mapping_is_traced(witness, mapping):
    weight_set, outputs = witness
    images = to_pixels(outputs[::-1], mapping)  # order does not matter
    assert trace_samples(images, [weight_set]) == (300, 300, 0)


@pytest.fixture(scope="module")
def kit_outputs():
    """The kit's trained generator on 10,240 latents (five of the course template's 2,048 batches)."""
    from pathlib import Path

    state = torch.load(Path(__file__).resolve().parents[2] / "submission" / "checkpoints" / "G.pth",
                       map_location="cpu", weights_only=True)
    weights = [state[f"fc{layer}.{kind}"].float().numpy() for layer in range(1, 5) for kind in ("weight", "bias")]
    latents = np.random.default_rng(3).standard_normal((10_240, LATENT_DIM)).astype(np.float32)
    return WeightSet(weights, latents, "3" * 64), replay(weights, latents)


@pytest.mark.parametrize("mapping", ["clamp", "binarised"])
def test_a_trained_generator_is_traced_among_many_outputs(kit_outputs, mapping):
    """With a trained generator and thousands of outputs, a clamped sample once correlated better with
    other outputs than with its own (32 of 10,000 course-template samples were called violations)."""
    weight_set, outputs = kit_outputs
    written = outputs[:4000]
    images = to_pixels(written, "clamp") if mapping == "clamp" else \
        np.where(written > 0, 255, 0).astype(np.uint8).reshape(-1, 28, 28)
    checked, traced, uninformative = trace_samples(images, [weight_set])
    assert checked + uninformative == 4000 and traced == checked


def test_latents_recorded_twice_are_read_once(tmp_path):
    """A generator wrapped in DataParallel records each batch at both levels: one copy is kept."""
    from evaluator.sandbox.rule_check import read_trace

    weights = random_weights(0)
    np.savez(tmp_path / "weights-7-0.npz", **{f"p{i}": w for i, w in enumerate(weights)})
    latents = np.random.default_rng(0).standard_normal((50, LATENT_DIM)).astype(np.float32)
    (tmp_path / "latents-7-0.f32").write_bytes(np.concatenate([latents, latents, latents[:10]]).tobytes())
    [weight_set] = read_trace(tmp_path, 1 << 30).weight_sets
    np.testing.assert_array_equal(weight_set.latents, latents)


def test_other_images_are_not_traced(witness):
    from scipy.ndimage import uniform_filter

    weight_set, outputs = witness
    images = to_pixels(outputs, "linear")
    blurred = uniform_filter(images.astype(np.float32), size=(1, 3, 3)).astype(np.uint8)
    inverted = 255 - images
    noise = np.random.default_rng(1).integers(0, 256, images.shape, dtype=np.uint8)
    for foreign in (blurred, inverted, noise):
        checked, traced, _ = trace_samples(foreign, [weight_set])
        assert checked == 300 and traced == 0
    other_weights = WeightSet(random_weights(1), weight_set.latents, "1" * 64)
    assert trace_samples(images, [other_weights])[1] == 0
    fresh = np.random.default_rng(2).standard_normal(weight_set.latents.shape).astype(np.float32)
    other_latents = WeightSet(weight_set.weights, fresh, "2" * 64)
    assert trace_samples(images, [other_latents])[1] == 0


def test_blank_images_are_uninformative_not_violations(witness):
    weight_set, _ = witness
    assert trace_samples(np.zeros((5, 28, 28), np.uint8), [weight_set]) == (0, 0, 5)


def mnist_like(count: int, seed: int = 0) -> np.ndarray:
    """Images made outside any module: smooth strokes, then blurred and mirrored."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    canvas = np.zeros((count, 28, 28), np.float32)
    for image in canvas:
        for _ in range(3):
            r, c = rng.integers(6, 22, 2)
            image[r - 4:r + 4, c - 1:c + 2] = 1
    return (gaussian_filter(canvas, (0, 1, 1))[:, :, ::-1] * 255 / canvas.max()).astype(np.uint8)


@pytest.mark.parametrize("scale", [0.0, 1e-3])
def test_an_output_that_barely_varies_explains_nothing(scale):
    """A decoy fixed generator with its last layer zeroed (or nearly): every output is nearly one
    value, so any image was in order with it. Such images are not traced."""
    weights = random_weights(4)
    weights[6] = weights[6] * scale  # fc4.weight
    weights[7] = np.zeros_like(weights[7]) + 0.003 * np.random.default_rng(5).standard_normal(784).astype(np.float32)
    latents = np.random.default_rng(6).standard_normal((300, LATENT_DIM)).astype(np.float32)
    images = mnist_like(300)
    assert trace_samples(images, [WeightSet(weights, latents, "4" * 64)]) == (300, 0, 0)


def test_genuine_mappings_keep_their_structure(kit_outputs):
    """What MIN_EXPLAINED rests on: a trained generator's outputs under every measured mapping."""
    from evaluator.sandbox.rule_check import MIN_EXPLAINED, explained_share

    _, outputs = kit_outputs
    outputs = outputs[:2000]
    for mapping in ("linear", "clamp", "minmax"):
        pixels = to_pixels(outputs, mapping).reshape(len(outputs), -1)
        informative = pixels.max(axis=1) > pixels.min(axis=1)
        assert explained_share(pixels[informative], outputs[informative]).min() > 0.97 > MIN_EXPLAINED
    binary = np.where(outputs > 0, 255, 0)
    assert np.quantile(explained_share(binary, outputs), 0.001) > MIN_EXPLAINED


def test_the_checked_subset_is_not_predictable_from_the_seed(witness, monkeypatch):
    """A team that knows the seed computes the subset the check would draw and makes only those
    samples genuine: the subset is drawn from fresh entropy, so foreign samples are found."""
    from evaluator.sandbox import rule_check

    weight_set, outputs = witness
    rows = len(weight_set.latents)
    monkeypatch.setattr(rule_check, "MATCH_BUDGET_MACS", 40 * rows * 784 * len(rule_check.VIEWS))
    images = mnist_like(300)
    for seed in (0, 1, 2):
        predicted = np.random.default_rng(seed).choice(np.arange(300), 40, replace=False)
        images[predicted] = to_pixels(outputs[predicted], "linear")
    checked, traced, _ = trace_samples(images, [weight_set])
    assert checked == 40 and traced < checked


def test_the_samples_decide_however_the_generator_is_wrapped(witness):
    """A module doing rejection in its forward (a critic inside, fewer rows out than in) passes when
    every sample is an output of the fixed generator it wraps."""
    weight_set, outputs = witness
    images = to_pixels(outputs, "linear")
    wrapper = {"class": "generate.Rejection", "outermost_generator_calls": 3, "latent_values": 100,
               "parameters": [[f"G.{name}", shape] for name, shape in EXPECTED_SHAPES.items()] +
               [["D.fc1.weight", [1024, 784]]], "parameter_count": 9}
    report = check_rule(images, Trace([wrapper], [weight_set]))
    assert report.ok and report.traced == report.checked == 300
    assert check_rule(None, Trace([wrapper], [])).status == "not_run"  # a failed run: nothing to check


def test_check_rule_reports_architecture_and_untraced_samples(witness):
    weight_set, outputs = witness
    images = to_pixels(outputs, "linear")
    generator = {"class": "model.Generator", "outermost_generator_calls": 1, "latent_values": 100,
                 "parameters": [[name, shape] for name, shape in EXPECTED_SHAPES.items()], "parameter_count": 8}
    assert check_rule(images, Trace([generator], [weight_set])).ok
    with_bn = {**generator, "parameters": generator["parameters"] + [["bn1.weight", [256]]], "parameter_count": 9}
    report = check_rule(images, Trace([with_bn], []))
    assert not report.ok and any("bn1.weight [256]" in v for v in report.violations)
    assert any("300 of the 300 samples" in v for v in report.violations)
    latent_150 = {**generator, "latent_values": 150}
    assert any("150 latent values" in v for v in check_rule(images, Trace([latent_150], [])).violations)
    nothing = check_rule(images, Trace([], []))
    assert any("no torch module produced the samples" in v for v in nothing.violations)


def test_the_evaluation_python_is_bound_after_the_private_tmp(tmp_path, monkeypatch):
    """A virtual environment under /tmp stays visible: its bind comes after the /tmp tmpfs."""
    from evaluator.sandbox import runner
    from evaluator.sandbox.limits import Limits
    from evaluator.sandbox.workspace import Workspace

    venv = tmp_path / "venv-under-tmp"  # pytest's folders live under /tmp
    venv.mkdir(mode=0o755)
    assert str(venv).startswith("/tmp/")
    monkeypatch.setattr(runner, "_python_roots", lambda: [str(venv)])
    command = runner.build_command(Workspace(tmp_path, Limits()), ["python"], Limits(), False, {}, 5, None)
    tmpfs = command.index("--tmpfs")
    bind = command.index(str(venv))
    assert command[tmpfs + 1] == "/tmp" and bind > tmpfs and command[bind - 1] == "--ro-bind"
    assert command[command.index("--json-status-fd") + 1] == "5"
