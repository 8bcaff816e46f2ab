"""Fit a recipe's critic to the generator it ships with, for rejection at generation time.

    calibrate-critic wgan-gp-course wgan-gp-course-rejection --epochs 5 [--percentile 50]

Why: the trainer's critic learned against the raw generator of its last steps, while the
exported G is often the moving average (or an earlier epoch). Rejection ranks the exported G's
samples by that critic, so it should score *that* G. This trains D alone, with the variant's own
critic loss (for WGAN-GP: the gradient penalty included), against the frozen exported G, on the
training digits less the trainer's held-out split (same size, same seed), so the held-out digits
stay fit to choose the rejection percentile by (bench/critic_rejection.py). Azadi et al.'s DRS
fine-tunes its discriminator after training for the same reason.

The new critic is stored once in baselines/weights/; the derived recipe NAME keeps the base's G
and names the new D, with a sampling.json that says how to reject.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import torch
from rich.console import Console

from baselines.train import BASELINES_DIR, TrainConfig, Trainer, load_training_data, training_split
from evaluator import mnist


def calibrate(trainer: Trainer, data: torch.Tensor, epochs: int, max_steps: int | None = None,
              log=None) -> list[dict]:
    """Train `trainer`'s D alone against its (frozen) G for `epochs` passes over `data` less the
    held-out split; returns one log entry per epoch."""
    config = trainer.config
    data, _ = training_split(data, config)
    trainer.generator.requires_grad_(False)
    batches = len(data) // config.batch_size
    entries, steps, started = [], 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(data), device=trainer.device)
        total = torch.zeros((), device=trainer.device)
        for index in range(batches):
            total += trainer.d_step(data[order[index * config.batch_size:(index + 1) * config.batch_size]])
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        entry = {"epoch": epoch, "steps": steps, "d_loss": round(float(total) / (index + 1), 5),
                 "wall_time_s": round(time.perf_counter() - started, 1)}
        entries.append(entry)
        if log is not None:
            log(f"critic epoch {epoch}: d_loss {entry['d_loss']:.4g}, {entry['wall_time_s']:.0f} s")
        if max_steps is not None and steps >= max_steps:
            break
    return entries


def derive(base: str, name: str, epochs: int, percentile: float, lr_d: float | None = None,
           device: str = "cpu", data_root: str | None = None, max_steps: int | None = None,
           recipes_dir: Path = BASELINES_DIR, weights_dir: Path | None = None, command: str = "",
           log=None) -> dict:
    """Calibrate BASE's critic and write the derived recipe NAME; returns its manifest."""
    from baselines.recipes import (WEIGHTS_DIR, RecipeError, checked_name, derived_manifest, load_weights, recipes,
                                   store_state, write_derived)

    recipe = recipes().get(base)
    if recipe is None or recipe.sampling is not None or "D.pth" not in recipe.files:
        raise RecipeError(f"{base} is not a trained recipe with a D.pth (train it with --keep-d)")
    manifest = recipe.manifest
    optimizer = manifest["optimizer"]
    config = TrainConfig(manifest["variant"], batch_size=manifest["batch_size"], seed=manifest["seed"],
                         device=device, lr_d=lr_d or optimizer["lr_d"], betas_d=tuple(optimizer["betas_d"]),
                         d_dropout=manifest.get("d_dropout"), holdout=manifest.get("holdout", 0),
                         data_root=data_root, out_dir=recipes_dir / checked_name(name))
    trainer = Trainer(config, console=Console(quiet=True))
    load_weights(trainer.generator, recipe.files["G.pth"], trainer.device)
    load_weights(trainer.discriminator, recipe.files["D.pth"], trainer.device)
    entries = calibrate(trainer, load_training_data(data_root, device), epochs, max_steps, log)
    critic = store_state(trainer.discriminator.state_dict(), weights_dir or WEIGHTS_DIR)
    sampling = {"method": "critic_rejection", "percentile": percentile, "burn_in": 10_000}
    derived = derived_manifest(
        recipe, sampling, {"G.pth": recipe.files["G.pth"], "D.pth": critic},
        critic_calibration={"command": command, "epochs": len(entries), "steps": entries[-1]["steps"],
                            "lr_d": config.lr_d, "betas_d": list(config.betas_d),
                            "wall_time_s": entries[-1]["wall_time_s"], "device": str(trainer.device),
                            "log": entries})
    write_derived(config.out_dir, derived)
    return derived


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("base")
@click.argument("name")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1),
              help="Passes of the critic over the training digits (less the held-out ones).")
@click.option("--percentile", default=50.0, show_default=True, type=click.FloatRange(0, 100, max_open=True),
              help="The rejection setting written to sampling.json (choose it with bench/critic_rejection.py).")
@click.option("--lr-d", type=float, default=None, help="Critic learning rate (default: the base's).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None, help="Folder containing MNIST/raw.")
@click.option("--max-steps", type=int, default=None, hidden=True)
def main(base: str, name: str, epochs: int, percentile: float, lr_d: float | None, device: str,
         data_root: str | None, max_steps: int | None) -> None:
    """Train BASE's critic against its exported G; write the rejection recipe NAME."""
    from baselines.recipes import RecipeError

    console = Console()
    try:
        manifest = derive(base, name, epochs, percentile, lr_d, device, data_root, max_steps,
                          command=" ".join(["calibrate-critic", *sys.argv[1:]]), log=console.print)
    except RecipeError as err:
        raise click.ClickException(str(err)) from err
    console.print(f"stored D.pth as baselines/weights/{manifest['files']['D.pth']}.pth; recipe baselines/{name}")


if __name__ == "__main__":
    main()
