"""One GAN trainer for every variant: `train-baseline VARIANT [--epochs N] [--device cuda] ...`.

MNIST's training split is preloaded as one tensor in [-1, 1] on the training device, less
`--holdout` digits kept apart (seeded): the checkpoint is *chosen* by FID against those held-out
training digits, never against the test split, which is the leaderboard's reference. An epoch is
one pass of the discriminator over the training digits; the generator steps once every n_critic
batches. Options follow what the best course teams did: per-network Adam betas, Xavier
initialisation, a final phase at a reduced learning rate, and an exponential moving average of G
updated every generator step (both G and its average are scored; the better one is kept). State is
checkpointed every few epochs and `--resume` continues from it, with the learning rates that this
command line asks for. The chosen weights are stored once, in float16, in baselines/weights/, and
the recipe's manifest.json names them by SHA-256 (baselines/recipes.py).
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
    betas_g: tuple[float, float] | None = None  # None: the objective's betas
    betas_d: tuple[float, float] | None = None
    init: str = "default"  # default (PyTorch's) | xavier (Xavier-uniform weights, zero biases)
    final_epochs: int = 0  # the last N epochs at `final_lr_scale` times the learning rates
    final_lr_scale: float = 0.5
    ema: float | None = None  # decay of the generator's moving average, updated every G step
    holdout: int = 10_000  # training digits kept apart to choose the checkpoint by (0: keep the last)
    d_dropout: float | None = None  # None: the objective's dropout before each hidden D layer
    keep_d: bool = False  # store D.pth too (for discriminator or critic rejection at generation time)
    # The f-GAN KL course team's stabilisers (shared/reference/course-and-variants.md, section 6):
    d_grad_clip: float | None = None  # max norm of D's gradient (None: the objective's, fgan-kl 1.0)
    g_grad_clip: float | None = None  # max norm of G's gradient (None: not clipped)
    d_weight_decay: float = 0.0  # L2 penalty on D's weights, as Adam's weight_decay
    lr_warmup_epochs: int = 0  # both rates ramp linearly from 0, step by step, over the first N epochs
    out_dir: Path = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.out_dir is None:
            self.out_dir = BASELINES_DIR / self.variant
        self.out_dir = Path(self.out_dir)


def load_training_data(data_root: str | None, device: str) -> torch.Tensor:
    images = mnist.load_split("train", data_root).images
    return (torch.from_numpy(images.copy()).float().div(127.5).sub(1).view(-1, 784)).to(device)


def split_holdout(data: torch.Tensor, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training digits, held-out digits): a seeded split of the training split, never the test split."""
    if count <= 0:
        return data, data[:0]
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).to(data.device)
    return data[order[count:]], data[order[:count]]


def training_split(data: torch.Tensor, config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's (training, held-out) digits: `config.holdout` of them (at most half), seeded."""
    return split_holdout(data, min(config.holdout, len(data) // 2), config.seed)


def xavier(module: torch.nn.Module) -> None:
    """Xavier-uniform weights and zero biases for every linear layer (what the course's #1 team used)."""
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                torch.nn.init.zeros_(layer.bias)


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
        if config.d_dropout is not None:
            self.main_objective.d_dropout = config.d_dropout
        self.warmup_objective = make_objective(config.warmup_variant) if config.warmup_epochs else None
        if config.d_grad_clip is not None:  # the warm-up's steps too: the clip holds from the first step
            for objective in filter(None, (self.main_objective, self.warmup_objective)):
                objective.grad_clip = config.d_grad_clip
        self.objective = self.main_objective
        settings = self.objective.optimizer
        self.device = torch.device(config.device)
        _seed_everything(config.seed)
        self.generator = Generator().to(self.device)
        self.discriminator = Discriminator(self.objective.d_dropout).to(self.device)
        if config.init == "xavier":
            xavier(self.generator)
            xavier(self.discriminator)
        elif config.init != "default":
            raise ValueError(f"init must be 'default' or 'xavier', not {config.init!r}")
        self.lr_g, self.lr_d = config.lr_g or settings.lr_g, config.lr_d or settings.lr_d
        self.betas_g, self.betas_d = config.betas_g or settings.betas, config.betas_d or settings.betas
        self.opt_g = settings.build(self.generator.parameters(), self.lr_g, self.betas_g)
        self.opt_d = settings.build(self.discriminator.parameters(), self.lr_d, self.betas_d,
                                    weight_decay=config.d_weight_decay)
        self.ema = Generator().to(self.device) if config.ema else None
        if self.ema is not None:
            self.ema.load_state_dict(self.generator.state_dict())
            self.ema.requires_grad_(False)
        self.best: dict | None = None  # {"fid", "epoch", "which", "state"}: the checkpoint choice so far
        self.holdout_reference = None
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
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "best": self.best,
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
        # The optimiser state carries its old learning rates: this command line's rates win (set each
        # epoch by the schedule), and its betas too.
        for optimizer, betas in ((self.opt_g, self.betas_g), (self.opt_d, self.betas_d)):
            for group in optimizer.param_groups:
                if "betas" in group:
                    group["betas"] = tuple(betas)
        self._set_learning_rates()
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.best = state.get("best")
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
        if self.config.g_grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.config.g_grad_clip)
        self.opt_g.step()
        for parameter in self.discriminator.parameters():
            parameter.requires_grad_(True)
        if self.ema is not None:
            with torch.no_grad():
                for average, current in zip(self.ema.parameters(), self.generator.parameters()):
                    average.lerp_(current, 1.0 - self.config.ema)
        return loss.detach()

    def _set_learning_rates(self, batch: int = 0, batches: int = 1) -> None:
        """The rates this step runs at: the configured ones, scaled in the final phase, and ramped
        from 0 over the warm-up's steps (batch `batch` of `batches` in the current epoch)."""
        config = self.config
        final = config.final_epochs and self.epoch >= config.epochs - config.final_epochs
        scale = config.final_lr_scale if final else 1.0
        if self.epoch < config.lr_warmup_epochs:
            scale *= (self.epoch * batches + batch + 1) / (config.lr_warmup_epochs * batches)
        for optimizer, rate in ((self.opt_g, self.lr_g), (self.opt_d, self.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = rate * scale

    def train(self, data: torch.Tensor) -> None:
        """Train on `data` (all training digits): `holdout` of them are kept apart to choose by."""
        config = self.config
        data, held_out = training_split(data, config)
        if len(held_out) and config.eval_every:
            self.holdout_reference = _reference(held_out, config)
        batches = len(data) // config.batch_size
        columns = (TextColumn(f"[bold]{config.variant}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, disable=not self.console.is_terminal) as progress:
            task = progress.add_task("train", total=config.epochs * batches,
                                     completed=self.epoch * batches, status="")
            while self.epoch < config.epochs:
                self.objective = (self.warmup_objective if self.epoch < config.warmup_epochs
                                  else self.main_objective)
                self._set_learning_rates()
                started = time.perf_counter()
                order = torch.randperm(len(data), device=self.device)
                d_sum = torch.zeros((), device=self.device)
                g_sum = torch.zeros((), device=self.device)
                g_steps = 0
                for index in range(batches):
                    if self.epoch < config.lr_warmup_epochs:
                        self._set_learning_rates(index, batches)
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
                         "objective": self.objective.name, "lr_g": self.opt_g.param_groups[0]["lr"],
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
                    self._choose(entry)
                self._log(entry)
                if config.checkpoint_every and (self.epoch % config.checkpoint_every == 0 or last):
                    self.save_checkpoint()
                if out_of_time:
                    self.console.print(f"{config.variant}: time budget reached at epoch {self.epoch}")
                if last:
                    break

    @torch.inference_mode()
    def sample(self, count: int, batch_size: int = 2500, network: torch.nn.Module | None = None) -> np.ndarray:
        network = network or self.generator
        was_training = network.training
        network.eval()
        chunks = []
        for start in range(0, count, batch_size):
            z = torch.randn(min(batch_size, count - start), LATENT_DIM, device=self.device)
            chunks.append(((network(z).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
        network.train(was_training)
        return torch.cat(chunks).view(-1, 28, 28).numpy()

    def quick_metrics(self) -> dict:
        """MNIST-feature FID / precision / recall of fresh samples (of G and of its average), against
        the held-out training digits when there are any, else the test split (reported as such)."""
        out = {}
        for which, network in (("", self.generator), ("ema.", self.ema)):
            if network is None:
                continue
            images = self.sample(self.config.eval_samples, network=network)
            if self.holdout_reference is not None:
                metrics = _score_against(images, self.holdout_reference, self.config)
                out.update({f"holdout.{which}{name}": round(value, 5) for name, value in metrics.items()})
            else:
                from evaluator.pipeline import EvaluationOptions, score_images

                options = EvaluationOptions(expected_count=self.config.eval_samples, data_root=self.config.data_root,
                                            cache_dir=self.config.cache_dir, metrics=("fid", "precision_recall"),
                                            device=self.config.device, bootstrap=0)
                metrics = score_images(images, options)["metrics"]
                out.update({f"quick.{which}{name}": round(value, 5) for name, value in metrics.items()})
        return out

    def _choose(self, entry: dict) -> None:
        """Keep the best held-out FID seen so far, of G or of its average (the exported weights)."""
        if self.holdout_reference is None:
            return
        for which, network in (("raw", self.generator), ("ema", self.ema)):
            key = "holdout.mnist.fid" if which == "raw" else "holdout.ema.mnist.fid"
            if network is None or key not in entry:
                continue
            if self.best is None or entry[key] < self.best["fid"]:
                self.best = {"fid": entry[key], "epoch": self.epoch, "which": which, "state": _copy(network)}
                if self.config.keep_d:  # the critic of the same epoch, for rejection with this G
                    self.best["critic"] = _copy(self.discriminator)

    def _log(self, entry: dict) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        shown = ", ".join(f"{k} {v:.4g}" for k, v in entry.items() if isinstance(v, float))
        self.console.print(f"{self.config.variant} epoch {entry['epoch']}: {shown}", highlight=False)

    # -- export ------------------------------------------------------------------------------
    def export(self, command: str, weights_dir: Path | None = None) -> dict:
        """Store the chosen G (and D with keep_d) once in the weights store, and write the recipe's
        manifest.json: every setting, the command, device and wall time, the files by SHA-256."""
        from baselines.recipes import WEIGHTS_DIR, store_state

        store = weights_dir or WEIGHTS_DIR
        chosen = self.best["state"] if self.best is not None else self.generator.state_dict()
        files = {"G.pth": store_state(chosen, store)}
        if self.config.keep_d:
            critic = (self.best or {}).get("critic") or self.discriminator.state_dict()
            files["D.pth"] = store_state(critic, store)
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
            "g_grad_clip": self.config.g_grad_clip,
            "d_weight_decay": self.config.d_weight_decay,
            "lr_warmup_epochs": self.config.lr_warmup_epochs,
            "v_bound": getattr(objective, "v_bound", None),
            "warmup": ({"variant": self.config.warmup_variant, "epochs": self.config.warmup_epochs}
                       if self.config.warmup_epochs else None),
            "optimizer": {"name": settings.name, "lr_g": self.lr_g, "lr_d": self.lr_d,
                          "betas_g": list(self.betas_g), "betas_d": list(self.betas_d)},
            "init": self.config.init,
            "final_phase": ({"epochs": self.config.final_epochs, "lr_scale": self.config.final_lr_scale}
                            if self.config.final_epochs else None),
            "ema": self.config.ema,
            "holdout": self.config.holdout,
            "chosen": ({"epoch": self.best["epoch"], "weights": self.best["which"],
                        "holdout_mnist_fid": self.best["fid"]} if self.best is not None
                       else {"epoch": self.epoch, "weights": "raw", "holdout_mnist_fid": None}),
            "wall_time_s": round(self.wall_time, 1),
            "device": torch.cuda.get_device_name(0) if self.device.type == "cuda" else "cpu",
            "torch": torch.__version__,
            "files": files,
            "stored_as": "float16",
        }
        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        (self.config.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return manifest


def _copy(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def _reference(held_out: torch.Tensor, config: TrainConfig):
    """Feature statistics of the held-out training digits (MNIST features), for choosing checkpoints."""
    from evaluator.features import make_extractor
    from evaluator.metrics.context import FeatureReference

    images = ((held_out.view(-1, 28, 28) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    extractor = make_extractor("mnist", config.device)
    return FeatureReference.from_features(extractor(images).features, (3,)), extractor


def _score_against(images: np.ndarray, reference, config: TrainConfig) -> dict:
    from evaluator.metrics import knn
    from evaluator.metrics.context import FeatureContext
    from evaluator.metrics.fid_metric import fid
    from evaluator.metrics.precision_recall import precision_recall_metric

    stats, extractor = reference
    features = np.ascontiguousarray(extractor(images).features, dtype=np.float32)
    context = FeatureContext("mnist", features, stats, 3, knn.make_backend("auto", features.shape[1], config.device))
    return {f"mnist.{name}": value for name, value in {**fid(context), **precision_recall_metric(context)}.items()}


def _betas(value: str | None, option: str) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        first, second = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not two numbers like 0.5,0.9", param_hint=option) from None
    if not (0 <= first < 1 and 0 <= second < 1):
        raise click.BadParameter("betas lie in [0, 1)", param_hint=option)
    return first, second


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
@click.option("--betas-g", callback=lambda c, p, v: _betas(v, "--betas-g"), default=None, metavar="B1,B2",
              help="Adam betas of the generator (default: the variant's).")
@click.option("--betas-d", callback=lambda c, p, v: _betas(v, "--betas-d"), default=None, metavar="B1,B2",
              help="Adam betas of the discriminator (default: the variant's).")
@click.option("--init", type=click.Choice(["default", "xavier"]), default="default", show_default=True)
@click.option("--final-epochs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Train the last N of --epochs at --final-lr-scale times the learning rates.")
@click.option("--final-lr-scale", default=0.5, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--ema", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), default=None,
              help="Keep an exponential moving average of G with this decay (e.g. 0.999); scored beside G.")
@click.option("--holdout", default=10_000, show_default=True, type=click.IntRange(min=0),
              help="Training digits kept apart to choose the exported checkpoint by (0: the last one).")
@click.option("--d-dropout", type=click.FloatRange(min=0, max=1, max_open=True), default=None,
              help="Dropout in the discriminator's hidden layers (default: the variant's; vanilla 0.3).")
@click.option("--keep-d", is_flag=True, help="Store D.pth too (for rejection sampling at generation time).")
@click.option("--d-grad-clip", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Clip D's gradient norm to this (default: the variant's; fgan-kl 1.0).")
@click.option("--g-grad-clip", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Clip G's gradient norm to this (default: not clipped).")
@click.option("--d-weight-decay", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Weight decay (L2) on D's weights.")
@click.option("--lr-warmup-epochs", default=0, show_default=True, type=click.IntRange(min=0),
              help="Ramp both learning rates linearly from 0 over the first N epochs.")
@click.option("--weights-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to store the chosen weights (default: baselines/weights/, the recipes' store). "
                   "Give one for a run that is not a recipe (another seed, an experiment): the store "
                   "holds only the files some recipe references.")
@click.option("--max-steps", type=int, default=None, hidden=True)
def main(variant: str, epochs: int, batch_size: int, device: str, seed: int, lr_g, lr_d, n_critic,
         v_bound: float | None, checkpoint_every: int, eval_every: int, out_dir: Path | None, data_root, cache_dir,
         resume: bool, time_budget: float | None, warmup_epochs: int, warmup_variant: str, betas_g, betas_d,
         init: str, final_epochs: int, final_lr_scale: float, ema: float | None, holdout: int,
         d_dropout: float | None, keep_d: bool, d_grad_clip: float | None, g_grad_clip: float | None,
         d_weight_decay: float, lr_warmup_epochs: int, weights_dir: Path | None, max_steps) -> None:
    """Train the reference GAN VARIANT; store its chosen weights and write its recipe (manifest.json)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.UsageError("--device cuda was given but CUDA is not available")
    config = TrainConfig(variant, epochs, batch_size, seed, device, lr_g, lr_d, n_critic, v_bound,
                         checkpoint_every, eval_every, data_root=data_root, cache_dir=cache_dir,
                         max_steps=max_steps, time_budget_s=time_budget, out_dir=out_dir,
                         warmup_epochs=warmup_epochs, warmup_variant=warmup_variant, betas_g=betas_g,
                         betas_d=betas_d, init=init, final_epochs=final_epochs, final_lr_scale=final_lr_scale,
                         ema=ema, holdout=holdout, d_dropout=d_dropout, keep_d=keep_d, d_grad_clip=d_grad_clip,
                         g_grad_clip=g_grad_clip, d_weight_decay=d_weight_decay, lr_warmup_epochs=lr_warmup_epochs)
    if warmup_epochs >= epochs:
        raise click.UsageError(f"--warmup-epochs ({warmup_epochs}) must be below --epochs ({epochs})")
    if final_epochs >= epochs:
        raise click.UsageError(f"--final-epochs ({final_epochs}) must be below --epochs ({epochs})")
    if lr_warmup_epochs + final_epochs > epochs:
        raise click.UsageError(f"--lr-warmup-epochs ({lr_warmup_epochs}) and --final-epochs ({final_epochs}) "
                               f"overlap within --epochs ({epochs})")
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
    from baselines.recipes import WEIGHTS_DIR

    store = weights_dir or WEIGHTS_DIR
    manifest = trainer.export(" ".join(["train-baseline", *sys.argv[1:]]), store)
    console.print(f"stored G.pth as {store}/{manifest['files']['G.pth']}.pth (epoch "
                  f"{manifest['chosen']['epoch']}, {manifest['chosen']['weights']}); recipe {config.out_dir}")


if __name__ == "__main__":
    main()
