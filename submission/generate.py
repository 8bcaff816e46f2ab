"""Write 10,000 generated digits to samples/0.png ... samples/9999.png.

    python generate.py --batch_size 2048

Runs on CUDA, Apple MPS or CPU (in that order of preference), with no network access.
An optional checkpoints/sampling.json picks a sampling trick (default: plain sampling):
  {"method": "interpolation"}                               z = a z1 + (1 - a) z2, a ~ U[0, 1]
  {"method": "drs", "gamma_percentile": 95, "burn_in": 10000, "d_dropout": 0.3}
                                                            discriminator rejection sampling (D.pth)
  {"method": "critic_rejection", "percentile": 50, "burn_in": 10000}
                                                            accept x with probability sigmoid(D(x) - c), c the
                                                            percentile of D(G(z)) over the burn-in (D.pth)
  {"method": "latent_rs", "m": 3}                           latent rejection sampling (W.pth)
  {"method": "latent_ga", "steps": 10, "step_size": 0.02}   latent gradient ascent on w (W.pth)
and, beside the method, how an output in [-1, 1] becomes a pixel (default: linear):
  "pixels": {"map": "linear"}                   [-1, 1] onto [0, 255]
  "pixels": {"map": "clamp"}                    as torchvision's save_image(x): negative outputs black
  "pixels": {"map": "cut", "below": 10}         linear, then pixels below 10 set to 0 (no faint haze)
  "pixels": {"map": "knots", "knots": [[-1, 0], [0, 40], [1, 255]]}
                                                through the points (output, pixel), non-decreasing
Any monotone per-pixel map is allowed by the competition's rules.
"""

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from model import LATENT_DIM, Discriminator, ImportanceNetwork, load_generator, load_network

CHECKPOINTS = "checkpoints"


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_uint8(images: torch.Tensor, pixels: dict | None = None) -> np.ndarray:
    """Map generator outputs in [-1, 1] to uint8 pixels with the map `pixels` (module docstring)."""
    x = images.float().reshape(-1, 28, 28)
    spec = pixels or {"map": "linear"}
    kind = spec.get("map", "linear")
    if kind == "linear":
        values = (x.clamp(-1, 1) + 1) * 127.5
    elif kind == "clamp":  # torchvision's save_image: x * 255 + 0.5, clamped, truncated
        values = (x * 255 + 0.5).clamp(0, 255).floor()
    elif kind == "cut":
        values = ((x.clamp(-1, 1) + 1) * 127.5).round()
        values = torch.where(values < float(spec.get("below", 10)), torch.zeros_like(values), values)
    elif kind == "knots":
        knots = torch.tensor(spec.get("knots", []), dtype=torch.float32)
        if knots.ndim != 2 or knots.shape[1] != 2 or len(knots) < 2:
            raise SystemExit('"knots" must list at least two [output, pixel] points')
        if not (bool((knots[1:, 0] > knots[:-1, 0]).all()) and bool((knots[1:, 1] >= knots[:-1, 1]).all())
                and float(knots[:, 1].min()) >= 0 and float(knots[:, 1].max()) <= 255):
            raise SystemExit('"knots" must rise in output and not fall in pixel, within [0, 255]')
        flat = x.clamp(float(knots[0, 0]), float(knots[-1, 0])).reshape(-1)
        segment = (torch.searchsorted(knots[:, 0].contiguous(), flat, right=True) - 1).clamp(0, len(knots) - 2)
        left, right = knots[segment], knots[segment + 1]
        values = (left[:, 1] + (flat - left[:, 0]) / (right[:, 0] - left[:, 0]) * (right[:, 1] - left[:, 1]))
        values = values.reshape(x.shape)
    else:
        raise SystemExit(f"unknown pixel map {kind!r} in sampling.json (linear, clamp, cut or knots)")
    return values.round().clamp(0, 255).to(torch.uint8).cpu().numpy()


class Sampler:
    """Draws batches of generator outputs in [-1, 1] with the configured trick."""

    def __init__(self, config: dict, device: torch.device) -> None:
        self.config = config
        self.method = config.get("method", "plain")
        self.device = device
        self.drawn = self.accepted = 0
        self.generator = load_generator(os.path.join(CHECKPOINTS, "G.pth"), device)
        if self.method in ("drs", "critic_rejection"):
            self.discriminator = load_network(Discriminator(config.get("d_dropout", 0.0)),
                                              os.path.join(CHECKPOINTS, "D.pth"), device)
            scores = self._burn_in(int(config.get("burn_in", 10_000)))
            if self.method == "drs":
                self.max_logit = float(scores.max())
            else:
                # A critic's scale and offset are arbitrary (a WGAN loss ignores a constant), so the
                # offset comes from its own scores on generated samples: at least half of those
                # above the percentile are kept, so generation always ends.
                self.offset = float(torch.quantile(scores.double(), config.get("percentile", 50) / 100.0))
        elif self.method in ("latent_rs", "latent_ga"):
            self.weights = load_network(ImportanceNetwork(), os.path.join(CHECKPOINTS, "W.pth"), device)
        elif self.method not in ("plain", "interpolation"):
            raise SystemExit(f"unknown sampling method {self.method!r} in sampling.json")

    def latents(self, count: int) -> torch.Tensor:
        return torch.randn(count, LATENT_DIM, device=self.device)

    @torch.no_grad()
    def _burn_in(self, count: int) -> torch.Tensor:
        return torch.cat([self.discriminator(self.generator(self.latents(min(2500, count - start))))
                          for start in range(0, count, 2500)])

    def batch(self, count: int) -> torch.Tensor:
        """At most `count` accepted samples (rejection methods may return fewer)."""
        if self.method == "interpolation":
            alpha = torch.rand(count, 1, device=self.device)
            z = alpha * self.latents(count) + (1 - alpha) * self.latents(count)
        elif self.method == "latent_rs":
            z = self.latents(count)
            with torch.no_grad():
                accept = torch.rand(count, device=self.device) <= self.weights(z) / self.config.get("m", 3.0)
            z = z[accept]
        elif self.method == "latent_ga":
            z = self.latents(count)
            for _ in range(int(self.config.get("steps", 10))):
                z = z.detach().requires_grad_(True)
                (gradient,) = torch.autograd.grad(self.weights(z).sum(), z)
                z = z + self.config.get("step_size", 0.02) * gradient
            z = z.detach()
        else:
            z = self.latents(count)
        with torch.no_grad():
            images = self.generator(z)
            if self.method == "drs":
                images = images[self._drs_accept(self.discriminator(images))]
            elif self.method == "critic_rejection":
                scores = self.discriminator(images).double()
                images = images[torch.rand_like(scores) <= torch.sigmoid(scores - self.offset)]
        self.drawn += count
        self.accepted += len(images)
        return images

    def _drs_accept(self, logits: torch.Tensor) -> torch.Tensor:
        """Azadi et al. 2019: F = D - D_M - log(1 - exp(D - D_M - eps)), accept w.p. sigmoid(F - gamma)."""
        self.max_logit = max(self.max_logit, float(logits.max()))
        shifted = logits.double() - self.max_logit
        f = shifted - torch.log1p(-torch.exp(shifted - 1e-6))
        gamma = torch.quantile(f, self.config.get("gamma_percentile", 95) / 100.0)
        return torch.rand_like(f) <= torch.sigmoid(f - gamma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", "--bacth_size", type=int, default=2048,
                        help="Samples generated per forward pass.")
    # The evaluator sets EVAL_NUM_SAMPLES only for its own quick tests; competitions use 10,000.
    parser.add_argument("--num_samples", type=int,
                        default=int(os.environ.get("EVAL_NUM_SAMPLES", "10000")))
    parser.add_argument("--seed", type=int, default=None, help="Fix the latent draws.")
    parser.add_argument("--out_dir", default="samples")
    args = parser.parse_args()
    if args.batch_size < 1 or args.num_samples < 1:
        parser.error("--batch_size and --num_samples must be positive")

    device = pick_device()
    if args.seed is not None:
        torch.manual_seed(args.seed)
    config_path = os.path.join(CHECKPOINTS, "sampling.json")
    config = json.load(open(config_path)) if os.path.exists(config_path) else {"method": "plain"}
    sampler = Sampler(config, device)
    os.makedirs(args.out_dir, exist_ok=True)

    def save(index_and_pixels):
        index, pixels = index_and_pixels
        Image.fromarray(pixels).save(os.path.join(args.out_dir, f"{index}.png"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = 0
        while written < args.num_samples:
            images = sampler.batch(args.batch_size)[: args.num_samples - written]
            pixels = to_uint8(images, config.get("pixels"))
            list(pool.map(save, zip(range(written, written + len(pixels)), pixels)))
            written += len(pixels)
    acceptance = f", acceptance {sampler.accepted / sampler.drawn:.1%}" if sampler.drawn else ""
    print(f"wrote {written} PNGs to {args.out_dir}/ on {device.type} ({sampler.method}{acceptance})")


if __name__ == "__main__":
    main()
