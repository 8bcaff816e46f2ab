"""Write 10,000 generated digits to samples/0.png ... samples/9999.png.

    python generate.py --batch_size 2048

Runs on CUDA, Apple MPS or CPU (in that order of preference), with no network access.
"""

import argparse
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from model import LATENT_DIM, load_generator


def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Map the tanh range [-1, 1] linearly onto [0, 255] (the whole range, nothing clipped)."""
    pixels = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.reshape(-1, 28, 28).cpu().numpy()


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
    generator = load_generator(os.path.join("checkpoints", "G.pth"), device)
    os.makedirs(args.out_dir, exist_ok=True)

    def save(index_and_pixels):
        index, pixels = index_and_pixels
        Image.fromarray(pixels).save(os.path.join(args.out_dir, f"{index}.png"))

    with torch.inference_mode(), ThreadPoolExecutor(max_workers=4) as pool:
        written = 0
        while written < args.num_samples:
            count = min(args.batch_size, args.num_samples - written)
            z = torch.randn(count, LATENT_DIM, device=device)
            pixels = to_uint8(generator(z))
            list(pool.map(save, zip(range(written, written + count), pixels)))
            written += count
    print(f"wrote {written} PNGs to {args.out_dir}/ on {device.type}")


if __name__ == "__main__":
    main()
