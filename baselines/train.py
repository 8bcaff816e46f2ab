"""One GAN trainer for every variant: `train-baseline VARIANT [--epochs N] [--device cuda] ...`.

MNIST is preloaded as one tensor in [-1, 1] on the training device. An epoch is one pass of
the discriminator over the training set; the generator steps once every n_critic batches.
State is checkpointed every few epochs and `--resume` continues from it; a quick MNIST-feature
FID/precision/recall on held-out samples is logged to training_log.jsonl as training goes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from baselines.kit import LATENT_DIM, Generator
from baselines.networks import Discriminator
from baselines.objectives import OBJECTIVES, Objective, make_objective
from evaluator import mnist

BASELINES_DIR = Path(__file__).resolve().parent


@dataclass
class TrainConfig:
    variant: str
    epochs: int = 100
    batch_size: int = 64
    seed: int = 0
    device: str = "cpu"
    lr_g: float | None = None  # None: the objective's default
    lr_d: float | None = None
    n_critic: int | None = None
    v_bound: float | None = None  # f-GAN only: soft bound on V (None: the objective's default)
    checkpoint_every: int = 10
    eval_every: int = 10
    eval_samples: int = 2000
    data_root: str | None = None
    cache_dir: str | None = None
    max_steps: int | None = None  # stop early (tests, smoke runs)
    time_budget_s: float | None = None  # stop at the first epoch end past this training time
    # Train the first `warmup_epochs` with another objective sharing D's output V (fgan-js: V is
    # the logit log(p/q), which is also the optimal V of KL, reverse KL and Neyman's f-GAN).
    warmup_epochs: int = 0
    warmup_variant: str = "fgan-js"
    out_dir: Path = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.out_dir is None:
            self.out_dir = BASELINES_DIR / self.variant
        self.out_dir = Path(self.out_dir)


def load_training_data(data_root: str | None, device: str) -> torch.Tensor:
    images = mnist.load_split("train", data_root).images
    return (torch.from_numpy(images.copy()).float().div(127.5).sub(1).view(-1, 784)).to(device)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Trainer:
    def __init__(self, config: TrainConfig, objective: Objective | None = None,
                 console: Console | None = None) -> None:
        self.config = config
        self.console = console or Console()
        self.main_objective = objective or make_objective(config.variant)
        if config.n_critic is not None:
            self.main_objective.n_critic = config.n_critic
        if config.v_bound is not None:
            if not hasattr(self.main_objective, "v_bound"):
                raise ValueError(f"{config.variant} has no critic bound; --v-bound is for f-GAN variants")
            self.main_objective.v_bound = config.v_bound
        self.warmup_objective = make_objective(config.warmup_variant) if config.warmup_epochs else None
        self.objective = self.main_objective
        settings = self.objective.optimizer
        self.device = torch.device(config.device)
        _seed_everything(config.seed)
        self.generator = Generator().to(self.device)
        self.discriminator = Discriminator(self.objective.d_dropout).to(self.device)
        self.opt_g = settings.build(self.generator.parameters(), config.lr_g or settings.lr_g)
        self.opt_d = settings.build(self.discriminator.parameters(), config.lr_d or settings.lr_d)
        self.epoch = 0
        self.step = 0
        self.wall_time = 0.0
        self.run_dir = config.out_dir / "run"
        self.log_path = config.out_dir / "training_log.jsonl"

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "epoch": self.epoch, "step": self.step, "wall_time": self.wall_time,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy_rng": json.dumps(np.random.get_state()[1].tolist()),
            "variant": self.config.variant,
        }

    def save_checkpoint(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "checkpoint.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    def resume(self) -> bool:
        path = self.run_dir / "checkpoint.pt"
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state["variant"] != self.config.variant:
            raise click.UsageError(f"{path} belongs to variant {state['variant']!r}")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.epoch, self.step, self.wall_time = state["epoch"], state["step"], state["wall_time"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        return True

    # -- training ----------------------------------------------------------------------------
    def d_step(self, real: torch.Tensor) -> float:
        z = torch.randn(len(real), LATENT_DIM, device=self.device)
        with torch.no_grad():
            fake = self.generator(z)
        loss = self.objective.d_loss(self.discriminator, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        if self.objective.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), self.objective.grad_clip)
        self.opt_d.step()
        self.objective.after_d_step(self.discriminator)
        return loss.detach()

    def g_step(self, batch_size: int) -> torch.Tensor:
        z = torch.randn(batch_size, LATENT_DIM, device=self.device)
        for parameter in self.discriminator.parameters():
            parameter.requires_grad_(False)
        loss = self.objective.g_loss(self.discriminator, self.generator, z)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        for parameter in self.discriminator.parameters():
            parameter.requires_grad_(True)
        return loss.detach()

    def train(self, data: torch.Tensor) -> None:
        config = self.config
        batches = len(data) // config.batch_size
        columns = (TextColumn(f"[bold]{config.variant}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, disable=not self.console.is_terminal) as progress:
            task = progress.add_task("train", total=config.epochs * batches,
                                     completed=self.epoch * batches, status="")
            while self.epoch < config.epochs:
                self.objective = (self.warmup_objective if self.epoch < config.warmup_epochs
                                  else self.main_objective)
                started = time.perf_counter()
                order = torch.randperm(len(data), device=self.device)
                d_sum = torch.zeros((), device=self.device)
                g_sum = torch.zeros((), device=self.device)
                g_steps = 0
                for index in range(batches):
                    real = data[order[index * config.batch_size : (index + 1) * config.batch_size]]
                    d_sum += self.d_step(real)
                    self.step += 1
                    if self.step % self.objective.n_critic == 0:
                        g_sum += self.g_step(config.batch_size)
                        g_steps += 1
                    if index % 50 == 0:
                        progress.update(task, completed=self.epoch * batches + index + 1,
                                        status=f"epoch {self.epoch + 1}")
                    if config.max_steps is not None and self.step >= config.max_steps:
                        break
                self.epoch += 1
                self.wall_time += time.perf_counter() - started
                entry = {"epoch": self.epoch, "step": self.step, "wall_time_s": round(self.wall_time, 1),
                         "objective": self.objective.name,
                         "d_loss": float(d_sum) / max(index + 1, 1),
                         "g_loss": float(g_sum) / max(g_steps, 1)}
                if not all(math.isfinite(entry[k]) for k in ("d_loss", "g_loss")):
                    self.console.print(f"[red]{config.variant}: loss is not finite at epoch {self.epoch}")
                out_of_time = (config.time_budget_s is not None
                               and self.wall_time >= config.time_budget_s)
                step_limit = config.max_steps is not None and self.step >= config.max_steps
                last = self.epoch >= config.epochs or step_limit or out_of_time
                if config.eval_every and (self.epoch % config.eval_every == 0 or last):
                    entry.update(self.quick_metrics())
                self._log(entry)
                if config.checkpoint_every and (self.epoch % config.checkpoint_every == 0 or last):
                    self.save_checkpoint()
                if out_of_time:
                    self.console.print(f"{config.variant}: time budget reached at epoch {self.epoch}")
                if last:
                    break

    @torch.inference_mode()
    def sample(self, count: int, batch_size: int = 2500) -> np.ndarray:
        self.generator.eval()
        chunks = []
        for start in range(0, count, batch_size):
            z = torch.randn(min(batch_size, count - start), LATENT_DIM, device=self.device)
            chunks.append(((self.generator(z).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
        self.generator.train()
        return torch.cat(chunks).view(-1, 28, 28).numpy()

    def quick_metrics(self) -> dict:
        """MNIST-feature FID / precision / recall of fresh samples, through the evaluator core."""
        from evaluator.pipeline import EvaluationOptions, score_images

        options = EvaluationOptions(expected_count=self.config.eval_samples,
                                    data_root=self.config.data_root, cache_dir=self.config.cache_dir,
                                    metrics=("fid", "precision_recall"), device=self.config.device)
        metrics = score_images(self.sample(self.config.eval_samples), options)["metrics"]
        return {f"quick.{name}": round(value, 5) for name, value in metrics.items()}

    def _log(self, entry: dict) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        shown = ", ".join(f"{k} {v:.4g}" for k, v in entry.items() if isinstance(v, float))
        self.console.print(f"{self.config.variant} epoch {entry['epoch']}: {shown}", highlight=False)

    # -- export ------------------------------------------------------------------------------
    def export(self, command: str) -> dict:
        """Write checkpoints/G.pth and D.pth plus a manifest with hashes and provenance."""
        checkpoints = self.config.out_dir / "checkpoints"
        checkpoints.mkdir(parents=True, exist_ok=True)
        g_path, d_path = checkpoints / "G.pth", checkpoints / "D.pth"
        torch.save({k: v.cpu() for k, v in self.generator.state_dict().items()}, g_path)
        torch.save({k: v.cpu() for k, v in self.discriminator.state_dict().items()}, d_path)
        objective = self.main_objective  # the manifest describes the variant, not its warm-up
        settings = objective.optimizer
        manifest = {
            "variant": self.config.variant,
            "command": command,
            "seed": self.config.seed,
            "epochs": self.epoch,
            "steps": self.step,
            "batch_size": self.config.batch_size,
            "n_critic": objective.n_critic,
            "d_dropout": objective.d_dropout,
            "d_grad_clip": objective.grad_clip,
            "v_bound": getattr(objective, "v_bound", None),
            "warmup": ({"variant": self.config.warmup_variant, "epochs": self.config.warmup_epochs}
                       if self.config.warmup_epochs else None),
            "optimizer": {"name": settings.name, "lr_g": self.config.lr_g or settings.lr_g,
                          "lr_d": self.config.lr_d or settings.lr_d, "betas": list(settings.betas)},
            "wall_time_s": round(self.wall_time, 1),
            "device": torch.cuda.get_device_name(0) if self.device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "files": {"G.pth": sha256_file(g_path), "D.pth": sha256_file(d_path)},
        }
        (checkpoints / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("variant", type=click.Choice(list(OBJECTIVES)))
@click.option("--epochs", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=2))
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--seed", default=0, show_default=True)
@click.option("--lr-g", type=float, default=None, help="Generator learning rate (default: the variant's).")
@click.option("--lr-d", type=float, default=None, help="Discriminator learning rate (default: the variant's).")
@click.option("--n-critic", type=click.IntRange(min=1), default=None)
@click.option("--v-bound", type=click.FloatRange(min=0, min_open=True), default=None,
              help="f-GAN only: bound V softly to (-B, B) (default: the variant's).")
@click.option("--checkpoint-every", default=10, show_default=True, help="Epochs between checkpoints.")
@click.option("--eval-every", default=10, show_default=True, help="Epochs between quick metrics (0: never).")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Reference submission folder [default: baselines/VARIANT].")
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None, help="Folder containing MNIST/raw.")
@click.option("--cache-dir", envvar="EVALUATOR_CACHE", default=None)
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from OUT_DIR/run/checkpoint.pt when present.")
@click.option("--time-budget", type=float, default=None,
              help="Stop at the first epoch end after this many seconds of training.")
@click.option("--warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Train the first N epochs with --warmup-variant's objective (same networks).")
@click.option("--warmup-variant", default="fgan-js", show_default=True, type=click.Choice(list(OBJECTIVES)))
@click.option("--max-steps", type=int, default=None, hidden=True)
def main(variant: str, epochs: int, batch_size: int, device: str, seed: int, lr_g, lr_d, n_critic,
         v_bound: float | None, checkpoint_every: int, eval_every: int, out_dir: Path | None, data_root, cache_dir,
         resume: bool, time_budget: float | None, warmup_epochs: int, warmup_variant: str,
         max_steps) -> None:
    """Train the reference GAN VARIANT and export it as a submission folder's checkpoints."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError("--device cuda was given but CUDA is not available")
    config = TrainConfig(variant, epochs, batch_size, seed, device, lr_g, lr_d, n_critic, v_bound,
                         checkpoint_every, eval_every, data_root=data_root, cache_dir=cache_dir,
                         max_steps=max_steps, time_budget_s=time_budget, out_dir=out_dir,
                         warmup_epochs=warmup_epochs, warmup_variant=warmup_variant)
    if warmup_epochs >= epochs:
        raise click.UsageError(f"--warmup-epochs ({warmup_epochs}) must be below --epochs ({epochs})")
    console = Console()
    try:
        trainer = Trainer(config, console=console)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if resume and trainer.resume():
        console.print(f"resumed {variant} at epoch {trainer.epoch}")
    elif trainer.log_path.exists():
        trainer.log_path.unlink()
    trainer.train(load_training_data(data_root, device))
    manifest = trainer.export(" ".join(["train-baseline", *sys.argv[1:]]))
    console.print(f"exported {config.out_dir / 'checkpoints'}: G.pth {manifest['files']['G.pth'][:12]}…")


if __name__ == "__main__":
    main()
