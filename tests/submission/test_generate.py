"""The kit's generate.py, run as a team runs it, with each sampling trick that needs a critic."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

KIT = Path(__file__).resolve().parents[2] / "submission"


def brightness_critic() -> dict[str, torch.Tensor]:
    """A Discriminator whose score is 10 x the image's mean pixel (every hidden unit stays positive,
    so LeakyReLU passes it through): rejection by this critic must favour brighter digits."""
    sys.path.insert(0, str(KIT))
    try:
        from model import Discriminator
    finally:
        sys.path.remove(str(KIT))
    critic = Discriminator()
    with torch.no_grad():
        for layer in (*[m for m in critic.body if isinstance(m, torch.nn.Linear)], critic.out):
            layer.weight.zero_()
            layer.bias.zero_()
        first, *middle = [m for m in critic.body if isinstance(m, torch.nn.Linear)]
        first.weight[0].fill_(1 / 784)
        first.bias[0] = 1.0  # mean pixel + 1 >= 0
        for layer in middle:
            layer.weight[0, 0] = 1.0
        critic.out.weight[0, 0] = 10.0
        critic.out.bias[0] = -10.0
    return critic.state_dict()


def run_kit(folder: Path, sampling: dict | None, count: int) -> tuple[np.ndarray, str]:
    shutil.copytree(KIT, folder, ignore=shutil.ignore_patterns("samples", "__pycache__"))
    torch.save(brightness_critic(), folder / "checkpoints" / "D.pth")
    if sampling is not None:
        (folder / "checkpoints" / "sampling.json").write_text(json.dumps(sampling))
    done = subprocess.run([sys.executable, "generate.py", "--batch_size", "256", "--num_samples", str(count),
                           "--seed", "0"], cwd=folder, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr
    images = np.stack([np.asarray(Image.open(folder / "samples" / f"{i}.png")) for i in range(count)])
    return images, done.stdout


@pytest.mark.parametrize("percentile, low, high", [(50, 0.3, 0.7), (90, 0.04, 0.4)])
def test_critic_rejection_keeps_what_the_critic_scores_high(tmp_path, percentile, low, high):
    plain, _ = run_kit(tmp_path / "plain", None, 1000)
    kept, log = run_kit(tmp_path / "kept", {"method": "critic_rejection", "percentile": percentile,
                                            "burn_in": 2000}, 1000)
    assert len(kept) == 1000 and kept.dtype == np.uint8
    acceptance = float(re.search(r"acceptance ([\d.]+)%", log).group(1)) / 100
    assert low < acceptance < high, log
    # Brighter digits on average, by many standard errors of the mean brightness.
    means = plain.reshape(len(plain), -1).mean(1), kept.reshape(len(kept), -1).mean(1)
    assert means[1].mean() - means[0].mean() > 5 * means[0].std() / np.sqrt(len(means[0]))


def test_an_unknown_sampling_method_is_a_clear_error(tmp_path):
    shutil.copytree(KIT, tmp_path / "kit", ignore=shutil.ignore_patterns("samples", "__pycache__"))
    (tmp_path / "kit" / "checkpoints" / "sampling.json").write_text('{"method": "critic-rejection"}')
    done = subprocess.run([sys.executable, "generate.py", "--num_samples", "4"], cwd=tmp_path / "kit",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "unknown sampling method 'critic-rejection'" in done.stderr


def kit_to_uint8():
    from baselines.kit import kit_generate

    return kit_generate().to_uint8


def test_the_default_pixel_map_is_the_linear_one():
    outputs = torch.linspace(-1.2, 1.2, 28 * 28 * 3).reshape(3, 784)
    pixels = kit_to_uint8()(outputs)
    expected = ((outputs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).reshape(3, 28, 28).numpy()
    assert np.array_equal(pixels, expected)
    assert np.array_equal(kit_to_uint8()(outputs, {"map": "linear"}), expected)


def test_the_clamp_map_is_torchvisions_save_image():
    import io

    from torchvision.utils import save_image

    outputs = torch.rand(1, 28, 28) * 2 - 1
    buffer = io.BytesIO()
    save_image(outputs, buffer, format="png")
    saved = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))
    assert np.array_equal(kit_to_uint8()(outputs, {"map": "clamp"})[0], saved)


def test_knots_and_cut_maps_are_monotone_and_hit_their_points():
    outputs = torch.linspace(-1, 1, 784).reshape(1, 784)
    knots = kit_to_uint8()(outputs, {"map": "knots", "knots": [[-1, 0], [0, 40], [1, 255]]}).reshape(-1)
    assert knots[0] == 0 and knots[-1] == 255 and np.all(np.diff(knots.astype(int)) >= 0)
    assert abs(int(knots[392]) - 40) <= 1  # the middle output is near 0
    cut = kit_to_uint8()(outputs, {"map": "cut", "below": 10}).reshape(-1)
    linear = kit_to_uint8()(outputs).reshape(-1)
    assert np.all(cut[linear < 10] == 0) and np.array_equal(cut[linear >= 10], linear[linear >= 10])


@pytest.mark.parametrize("spec, message", [
    ({"map": "gamma"}, "unknown pixel map 'gamma'"),
    ({"map": "knots", "knots": [[-1, 0], [-1, 10], [1, 255]]}, "must rise"),
    ({"map": "knots", "knots": [[-1, 200], [1, 100]]}, "must rise"),
    ({"map": "knots", "knots": [[-1, 0]]}, "at least two"),
])
def test_a_bad_pixel_map_is_a_clear_error(tmp_path, spec, message):
    shutil.copytree(KIT, tmp_path / "kit", ignore=shutil.ignore_patterns("samples", "__pycache__"))
    (tmp_path / "kit" / "checkpoints" / "sampling.json").write_text(json.dumps({"pixels": spec}))
    done = subprocess.run([sys.executable, "generate.py", "--num_samples", "4"], cwd=tmp_path / "kit",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and message in done.stderr


def test_the_folder_writes_its_samples_with_its_pixel_map(tmp_path):
    linear, _ = run_kit(tmp_path / "linear", None, 64)
    clamped, _ = run_kit(tmp_path / "clamped", {"pixels": {"map": "clamp"}}, 64)
    # The same latents: the clamped images are black wherever the linear ones are below mid-grey.
    assert np.all(clamped[linear < 127] == 0) and np.any(linear[linear < 127] > 0)
