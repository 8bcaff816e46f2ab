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
                               out_dir=tmp_path, holdout=512, ema=0.9, keep_d=True)
    first = train.Trainer(dataclasses.replace(config, epochs=1))
    first.train(data)
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    resumed = train.Trainer(config)
    assert resumed.resume() and resumed.epoch == 1
    for a, b in zip(first.generator.parameters(), resumed.generator.parameters()):
        torch.testing.assert_close(a, b)
    for a, b in zip(first.ema.parameters(), resumed.ema.parameters()):
        torch.testing.assert_close(a, b)
    resumed.train(data)
    assert resumed.epoch == 2
    log = [json.loads(line) for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    # Chosen against held-out training digits: G and its average both scored; the test split never used.
    assert [e["epoch"] for e in log] == [1, 2] and {"holdout.mnist.fid", "holdout.ema.mnist.fid"} <= set(log[-1])
    assert not any(key.startswith("quick.") for key in log[-1])
    store = tmp_path / "weights"
    manifest = resumed.export("train-baseline vanilla", store)
    assert manifest["epochs"] == 2 and set(manifest["files"]) == {"G.pth", "D.pth"}
    assert manifest["chosen"]["weights"] in ("raw", "ema") and manifest["chosen"]["holdout_mnist_fid"] > 0
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    state = torch.load(store / f"{manifest['files']['G.pth']}.pth", weights_only=True)
    assert set(state) == {f"fc{i}.{kind}" for i in range(1, 5) for kind in ("weight", "bias")}
    assert state["fc1.weight"].dtype == torch.float16


def test_the_held_out_digits_never_train():
    rows = torch.arange(2048, dtype=torch.float32)[:, None].expand(2048, 784)  # each row says which it is
    training, held_out = train.split_holdout(rows, 300, seed=0)
    assert len(training) == 2048 - 300 and len(held_out) == 300
    assert set(training[:, 0].tolist()).isdisjoint(held_out[:, 0].tolist())
    assert set(training[:, 0].tolist()) | set(held_out[:, 0].tolist()) == set(range(2048))
    assert torch.equal(train.split_holdout(rows, 300, seed=0)[1], held_out)  # the same split every time


def test_final_phase_xavier_betas_and_a_resume_with_new_rates(data, tmp_path, mnist_root):
    config = train.TrainConfig("wgan-gp", epochs=3, batch_size=512, eval_every=0, checkpoint_every=1,
                               data_root=str(mnist_root), out_dir=tmp_path, init="xavier", betas_g=(0.5, 0.9),
                               betas_d=(0.0, 0.9), final_epochs=1, final_lr_scale=0.5, lr_g=1e-3, lr_d=3e-4,
                               holdout=0, n_critic=1)
    trainer = train.Trainer(config)
    assert trainer.opt_g.param_groups[0]["betas"] == (0.5, 0.9) and trainer.opt_d.param_groups[0]["betas"] == (0.0, 0.9)
    assert float(trainer.generator.fc1.bias.detach().abs().sum()) == 0.0  # Xavier: zero biases
    trainer.train(data[:1024])
    rates = [json.loads(line)["lr_g"] for line in (tmp_path / "training_log.jsonl").read_text().splitlines()]
    assert rates == [1e-3, 1e-3, 5e-4]  # the last epoch at half the rate
    # Resuming with a new rate: the optimiser state's old rate must not win.
    again = train.Trainer(dataclasses.replace(config, epochs=5, lr_g=2e-4, final_epochs=0))
    assert again.resume()
    assert again.opt_g.param_groups[0]["lr"] == 2e-4 and again.opt_d.param_groups[0]["lr"] == 3e-4


def test_a_run_with_its_own_weights_dir_leaves_the_recipes_store_alone(tmp_path, mnist_root, monkeypatch):
    from baselines import recipes

    before = sorted(recipes.WEIGHTS_DIR.glob("*.pth"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    outcome = CliRunner().invoke(train.main, [
        "vanilla", "--epochs", "1", "--max-steps", "3", "--holdout", "0", "--eval-every", "0",
        "--data-root", str(mnist_root), "--out-dir", str(tmp_path / "run"), "--weights-dir", str(tmp_path / "w")])
    assert outcome.exit_code == 0, outcome.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert (tmp_path / "w" / f"{manifest['files']['G.pth']}.pth").is_file()
    assert sorted(recipes.WEIGHTS_DIR.glob("*.pth")) == before


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
    manifest = trainer.export("train-baseline fgan-kl --warmup-epochs 2", tmp_path / "weights")
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
    assert trainer.export("train-baseline fgan-reverse-kl --v-bound 3", tmp_path / "weights")["v_bound"] == 3.0


def test_cli_checks_the_new_options():
    outcome = CliRunner().invoke(train.main, ["vanilla", "--betas-g", "0.5"])
    assert outcome.exit_code == 2 and "two numbers" in outcome.output
    outcome = CliRunner().invoke(train.main, ["vanilla", "--epochs", "5", "--final-epochs", "5"])
    assert outcome.exit_code == 2 and "--final-epochs" in outcome.output


def test_cli_rejects_v_bound_for_objectives_without_one():
    outcome = CliRunner().invoke(train.main, ["vanilla", "--v-bound", "3"])
    assert outcome.exit_code == 2 and "--v-bound is for f-GAN variants" in outcome.output


@pytest.mark.parametrize("variant, dropout", [("vanilla", 0.0), ("msgan", 0.3)])
def test_d_dropout_overrides_the_variant_default_and_is_recorded(variant, dropout, tmp_path, mnist_root):
    config = train.TrainConfig(variant, d_dropout=dropout, data_root=str(mnist_root), out_dir=tmp_path)
    trainer = train.Trainer(config)
    rates = [m.p for m in trainer.discriminator.modules() if isinstance(m, torch.nn.Dropout)]
    assert set(rates) == ({dropout} if dropout else set()) and (rates or not dropout)
    assert trainer.export(f"train-baseline {variant} --d-dropout {dropout}", tmp_path / "weights")["d_dropout"] == dropout
    outcome = CliRunner().invoke(train.main, [variant, "--d-dropout", "1"])
    assert outcome.exit_code == 2 and "--d-dropout" in outcome.output


def test_the_stored_critic_is_the_one_of_the_chosen_epoch(data, tmp_path, mnist_root, cache_dir):
    config = train.TrainConfig("wgan-gp", epochs=1, batch_size=64, max_steps=5, eval_every=1, eval_samples=200,
                               holdout=512, checkpoint_every=0, data_root=str(mnist_root),
                               cache_dir=str(cache_dir), out_dir=tmp_path, keep_d=True)
    trainer = train.Trainer(config)
    trainer.train(data)  # epoch 1 is scored on the held-out digits and chosen ...
    assert trainer.best["epoch"] == 1
    trainer.best["fid"] = float("-inf")  # ... and no later epoch may replace it
    chosen_critic = trainer.best["critic"]
    trainer.config = dataclasses.replace(config, epochs=2, max_steps=10)
    trainer.train(data)  # the critic trains on
    assert trainer.best["epoch"] == 1
    assert any(not torch.equal(chosen_critic[k], v.cpu()) for k, v in trainer.discriminator.state_dict().items())
    manifest = trainer.export("train-baseline wgan-gp --keep-d", tmp_path / "weights")
    stored = torch.load(tmp_path / "weights" / f"{manifest['files']['D.pth']}.pth", weights_only=True)
    assert all(torch.equal(stored[k], chosen_critic[k].half()) for k in chosen_critic)


def test_the_f_gan_kl_stabilisers_ramp_clip_decay_and_are_recorded(data, tmp_path, mnist_root):
    config = train.TrainConfig("fgan-kl", epochs=3, batch_size=256, eval_every=0, checkpoint_every=0, holdout=0,
                               data_root=str(mnist_root), out_dir=tmp_path, lr_g=1e-3, lr_d=1e-3, lr_warmup_epochs=2,
                               d_grad_clip=0.5, g_grad_clip=1e-3, d_weight_decay=1e-4, warmup_epochs=1)
    trainer = train.Trainer(config)
    assert trainer.opt_d.param_groups[0]["weight_decay"] == 1e-4 and trainer.opt_g.param_groups[0]["weight_decay"] == 0
    rates, g_norms, d_norms = [], [], []
    g_step, d_step = trainer.opt_g.step, trainer.opt_d.step

    def norm(network):
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in network.parameters()])))

    def g_observed(*args, **kwargs):
        g_norms.append(norm(trainer.generator))
        return g_step(*args, **kwargs)

    def d_observed(*args, **kwargs):
        rates.append(trainer.opt_d.param_groups[0]["lr"])
        d_norms.append(norm(trainer.discriminator))
        return d_step(*args, **kwargs)

    trainer.opt_g.step, trainer.opt_d.step = g_observed, d_observed
    trainer.train(data[:1024])  # 4 steps an epoch
    assert rates == pytest.approx([1e-3 * k / 8 for k in range(1, 9)] + [1e-3] * 4)  # a linear ramp, then flat
    assert max(g_norms) <= 1e-3 * (1 + 1e-4) and max(d_norms) <= 0.5 * (1 + 1e-4)
    manifest = trainer.export("train-baseline fgan-kl", tmp_path / "weights")
    assert (manifest["d_grad_clip"], manifest["g_grad_clip"], manifest["d_weight_decay"],
            manifest["lr_warmup_epochs"]) == (0.5, 1e-3, 1e-4, 2)


def test_cli_rejects_a_learning_rate_warm_up_into_the_final_phase():
    outcome = CliRunner().invoke(train.main, ["fgan-kl", "--epochs", "4", "--lr-warmup-epochs", "3",
                                              "--final-epochs", "2"])
    assert outcome.exit_code == 2 and "--lr-warmup-epochs" in outcome.output
