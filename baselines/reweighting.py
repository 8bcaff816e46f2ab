"""Latent reweighting (Issenhuth et al. 2022): learn w(z) >= 0 for a frozen generator.

    train-reweighting wgan-gp --steps 5000 [--device cuda]

A critic D starts from the base variant's discriminator. Alternating steps:
  D: minimise -(E[D(x)] - E[w(z) D(G(z))] / E[w]) + 10 * gradient penalty
  w: maximise E[w(z)(D(G(z)) - delta)] - l1 (E[w] - 1)^2 - l2 E[max(0, w - m)^2],
     delta = min over the batch of D(G(z)), m = 3, l1 = 10, l2 = 3.
Writes W.pth into the base's latent-sampling reference folders (see baselines/folders.py).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass

import click
import torch
from rich.console import Console

from baselines.kit import LATENT_DIM, Generator
from baselines.networks import Discriminator, ImportanceNetwork
from baselines.objectives.wgan import gradient_penalty
from baselines.train import BASELINES_DIR, load_training_data
from evaluator import mnist


@dataclass
class ReweightingConfig:
    steps: int = 2000
    batch_size: int = 128
    m: float = 3.0
    lambda_mean: float = 10.0
    lambda_clip: float = 3.0
    gp_weight: float = 10.0
    lr_w: float = 1e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.5)
    seed: int = 0


def w_objective(w: torch.Tensor, critic_fake: torch.Tensor, config: ReweightingConfig) -> torch.Tensor:
    """The quantity the w step maximises (returned as is; the caller minimises its negative)."""
    delta = critic_fake.min().detach()
    return ((w * (critic_fake.detach() - delta)).mean()
            - config.lambda_mean * (w.mean() - 1) ** 2
            - config.lambda_clip * torch.clamp(w - config.m, min=0).pow(2).mean())


def train_reweighting(generator, discriminator, data: torch.Tensor, config: ReweightingConfig,
                      device: torch.device, log=None) -> ImportanceNetwork:
    torch.manual_seed(config.seed)
    generator.eval().requires_grad_(False)
    critic = discriminator.train()
    weights = ImportanceNetwork().to(device)
    opt_w = torch.optim.Adam(weights.parameters(), lr=config.lr_w, betas=config.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=config.lr_d, betas=config.betas)
    for step in range(config.steps):
        real = data[torch.randint(len(data), (config.batch_size,), device=device)]
        z = torch.randn(config.batch_size, LATENT_DIM, device=device)
        with torch.no_grad():
            fake = generator(z)
            w = weights(z)
        # Self-normalised weights: with mean(w) != 1 the raw objective is unbounded under a
        # constant shift of D (measured: the critic loss ran to -8e3 within 2000 steps).
        w = w / w.mean().clamp_min(1e-8)
        critic_loss = -(critic(real).mean() - (w * critic(fake)).mean()) \
            + config.gp_weight * gradient_penalty(critic, real, fake)
        opt_d.zero_grad(set_to_none=True)
        critic_loss.backward()
        opt_d.step()

        z = torch.randn(config.batch_size, LATENT_DIM, device=device)
        with torch.no_grad():
            critic_fake = critic(generator(z))
        w = weights(z)
        objective = w_objective(w, critic_fake, config)
        opt_w.zero_grad(set_to_none=True)
        (-objective).backward()
        opt_w.step()
        if log is not None and (step + 1) % 500 == 0:
            log(f"step {step + 1}: critic loss {critic_loss.item():.4f}, w objective {objective.item():.4f}, "
                f"mean w {w.mean().item():.3f}")
    return weights.eval()


@torch.no_grad()
def weight_critic_correlation(generator, critic, weights, device, count: int = 5000) -> float:
    """Pearson correlation of w(z) with D(G(z)): must be positive (course teams got it negative)."""
    z = torch.randn(count, LATENT_DIM, device=device)
    w, d = weights(z), critic(generator(z))
    return float(torch.corrcoef(torch.stack([w, d]))[0, 1])


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("base", default="wgan-gp")
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="cpu", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None)
def main(base: str, steps: int, device: str, seed: int, data_root: str | None) -> None:
    """Train w(z) on top of the recipe BASE and store W.pth for its latent-sampling recipes."""
    from baselines.recipes import RecipeError, load_weights, recipes, store_state

    console = Console()
    recipe = recipes().get(base)
    if recipe is None or "D.pth" not in recipe.files:
        raise click.UsageError(f"baselines/{base} has no recipe with a D.pth to initialise the critic from")
    torch_device = torch.device(device)
    generator = Generator().to(torch_device)
    critic = Discriminator(recipe.manifest.get("d_dropout", 0.0)).to(torch_device)
    try:
        for network, name in ((generator, "G.pth"), (critic, "D.pth")):
            load_weights(network, recipe.files[name], torch_device)
    except RecipeError as err:
        raise click.UsageError(str(err)) from err
    config = ReweightingConfig(steps=steps, seed=seed)
    started = time.perf_counter()
    weights = train_reweighting(generator, critic, load_training_data(data_root, device), config,
                                torch_device, log=console.print)
    correlation = weight_critic_correlation(generator, critic, weights, torch_device)
    console.print(f"corr(w(z), D(G(z))) = {correlation:.3f}")
    out = BASELINES_DIR / "_reweighting" / base
    out.mkdir(parents=True, exist_ok=True)
    digest = store_state(weights.state_dict())
    (out / "manifest.json").write_text(json.dumps({
        "base": base, "command": " ".join(["train-reweighting", *sys.argv[1:]]),
        "config": asdict(config), "wall_time_s": round(time.perf_counter() - started, 1),
        "device": device, "torch": torch.__version__, "w_critic_correlation": correlation,
        "files": {"W.pth": digest}}, indent=2) + "\n")
    console.print(f"stored W.pth as baselines/weights/{digest}.pth; the latent recipes of {base} name it in "
                  f"their manifest.json")


if __name__ == "__main__":
    main()
