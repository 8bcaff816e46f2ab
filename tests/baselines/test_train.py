"""A few training steps of every variant on CPU; checkpoint, resume and export."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from baselines import train
from baselines.objectives import OBJECTIVES


@pytest.fixture(scope="module")
def data(mnist_root):
    return train.load_training_data(str(mnist_root), "cpu")[:2048]


@pytest.mark.parametrize("variant", sorted(OBJECTIVES))
def test_a_few_steps_change_the_generator_and_stay_finite(variant, data, tmp_path, mnist_root):
    config = train.TrainConfig(variant, epochs=1, batch_size=32, max_steps=10, eval_every=0,
                               checkpoint_every=0, data_root=str(mnist_root), out_dir=tmp_path)
    trainer = train.Trainer(config)
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.train(data)
    assert trainer.step == 10
    moved = any(not torch.equal(a, b) for a, b in zip(before, trainer.generator.parameters()))
    assert moved, "the generator must have taken at least one step"
    entry = json.loads((tmp_path / "training_log.jsonl").read_text().splitlines()[-1])
    assert all(map(lambda k: abs(entry[k]) < 1e6, ("d_loss", "g_loss")))


def test_checkpoint_resume_and_export(data, tmp_path, mnist_root, cache_dir):
    config = train.TrainConfig("vanilla", epochs=2, batch_size=256, eval_every=1, eval_samples=200,
                               checkpoint_every=1, data_root=str(mnist_root), cache_dir=str(cache_dir),
                               out_dir=tmp_path)
    first = train.Trainer(dataclasses.replace(config, epochs=1))
    first.train(data)
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    resumed = train.Trainer(config)
    assert resumed.resume() and resumed.epoch == 1
    for a, b in zip(first.generator.parameters(), resumed.generator.parameters()):
        torch.testing.assert_close(a, b)
    resumed.train(data)
    assert resumed.epoch == 2
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2] and "quick.mnist.fid" in log[-1]
    manifest = resumed.export("train-baseline vanilla")
    assert manifest["epochs"] == 2 and len(manifest["files"]["G.pth"]) == 64
    state = torch.load(tmp_path / "checkpoints" / "G.pth", weights_only=True)
    assert set(state) == {f"fc{i}.{kind}" for i in range(1, 5) for kind in ("weight", "bias")}


def test_cli_rejects_unknown_variant_and_missing_cuda():
    outcome = CliRunner().invoke(train.main, ["nope"])
    assert outcome.exit_code == 2 and "nope" in outcome.output
    if not torch.cuda.is_available():
        outcome = CliRunner().invoke(train.main, ["vanilla", "--device", "cuda"])
        assert outcome.exit_code == 2 and "CUDA is not available" in outcome.output


def test_warmup_trains_with_the_warmup_objective_then_switches(data, tmp_path, mnist_root):
    config = train.TrainConfig("fgan-kl", epochs=3, batch_size=512, eval_every=0, checkpoint_every=0,
                               data_root=str(mnist_root), out_dir=tmp_path, warmup_epochs=2)
    trainer = train.Trainer(config)
    trainer.train(data[:1024])
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert [entry["objective"] for entry in log] == ["fgan-js", "fgan-js", "fgan-kl"]
    manifest = trainer.export("train-baseline fgan-kl --warmup-epochs 2")
    assert manifest["warmup"] == {"variant": "fgan-js", "epochs": 2}
    assert manifest["v_bound"] == 10.0  # the main objective's settings are recorded


def test_cli_rejects_a_warmup_as_long_as_training():
    outcome = CliRunner().invoke(train.main, ["fgan-kl", "--epochs", "3", "--warmup-epochs", "3"])
    assert outcome.exit_code == 2 and "--warmup-epochs" in outcome.output


def test_v_bound_overrides_the_f_gan_bound_and_is_recorded(tmp_path, mnist_root):
    config = train.TrainConfig("fgan-reverse-kl", v_bound=3.0, data_root=str(mnist_root), out_dir=tmp_path)
    trainer = train.Trainer(config)
    assert trainer.main_objective.v_bound == 3.0
    critic = trainer.main_objective.critic(lambda x: x, torch.tensor([100.0, -100.0]))
    assert torch.allclose(critic, torch.tensor([3.0, -3.0]))
    assert trainer.export("train-baseline fgan-reverse-kl --v-bound 3")["v_bound"] == 3.0


def test_cli_rejects_v_bound_for_objectives_without_one():
    outcome = CliRunner().invoke(train.main, ["vanilla", "--v-bound", "3"])
    assert outcome.exit_code == 2 and "--v-bound is for f-GAN variants" in outcome.output
