"""Reproducibly train the MNIST feature network: `train-mnist-features --data-root DIR`.

Deterministic on CPU for a given torch version and thread count (seeded, deterministic
algorithms). Writes the weights, their SHA-256 and a JSON record of the run.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from evaluator import mnist
from evaluator.features.mnist_cnn import WEIGHTS_PATH, MnistCNN, normalise, sha256_of

MIN_TEST_ACCURACY = 0.993


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random small rotation, scale and shift of a normalised (N, 1, 28, 28) batch."""
    n = batch.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(10)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)  # +-2 px
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = float(batch.min())
    return F.grid_sample(batch - background, grid, align_corners=False) + background


@torch.inference_mode()
def accuracy(network: MnistCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    network.eval()
    correct = 0
    for start in range(0, len(images), 2000):
        logits = network(normalise(images[start : start + 2000]))
        correct += int((logits.argmax(1) == labels[start : start + 2000]).sum())
    return correct / len(images)


def train(
    data_root: str | None,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    threads: int,
    console: Console,
) -> tuple[MnistCNN, dict]:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    train_split, test_split = mnist.load_split("train", data_root), mnist.load_split("test", data_root)
    train_x = torch.from_numpy(train_split.images.copy())
    train_y = torch.from_numpy(train_split.labels.copy())
    test_x = torch.from_numpy(test_split.images.copy())
    test_y = torch.from_numpy(test_split.labels.copy())

    network = MnistCNN()
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(train_x) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)
    history = []
    started = time.perf_counter()
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=epochs * steps_per_epoch, status="")
        for epoch in range(epochs):
            network.train()
            order = torch.randperm(len(train_x), generator=generator)
            running = 0.0
            for step in range(steps_per_epoch):
                index = order[step * batch_size : (step + 1) * batch_size]
                batch = augment(normalise(train_x[index]), generator)
                loss = F.cross_entropy(network(batch), train_y[index], label_smoothing=0.05)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                running += loss.item()
                progress.update(task, advance=1, status=f"epoch {epoch + 1} loss {running / (step + 1):.4f}")
            test_accuracy = accuracy(network, test_x, test_y)
            history.append({"epoch": epoch + 1, "train_loss": running / steps_per_epoch,
                            "test_accuracy": test_accuracy})
            console.print(f"epoch {epoch + 1}: loss {running / steps_per_epoch:.4f}, "
                          f"test accuracy {test_accuracy:.4%}")
    record = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "threads": threads,
        "test_accuracy": history[-1]["test_accuracy"], "history": history,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "torch": torch.__version__, "python": platform.python_version(), "device": "cpu",
        "data_sha256": {"train": train_split.sha256, "test": test_split.sha256},
    }
    return network.eval(), record


@click.command()
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None,
              help="Folder containing MNIST/raw (default: $MNIST_ROOT).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=WEIGHTS_PATH,
              show_default=True, help="Where to write the weights.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--lr", default=3e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True, help="CPU threads (affects bitwise results).")
def main(data_root: str | None, out: Path, epochs: int, batch_size: int, lr: float, seed: int,
         threads: int) -> None:
    """Train the MNIST feature network and write weights + SHA-256 + a JSON record."""
    console = Console()
    network, record = train(data_root, epochs, batch_size, lr, seed, threads, console)
    record["command"] = " ".join(["train-mnist-features", *sys.argv[1:]])
    if record["test_accuracy"] < MIN_TEST_ACCURACY:
        console.print(f"[red]test accuracy {record['test_accuracy']:.4%} is below "
                      f"{MIN_TEST_ACCURACY:.1%}; weights not written")
        raise SystemExit(1)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), out)
    digest = sha256_of(out)
    record["sha256"] = digest
    out.with_suffix(".pt.sha256").write_text(f"{digest}  {out.name}\n")
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    console.print(f"wrote {out} (SHA-256 {digest}), test accuracy {record['test_accuracy']:.4%}")


if __name__ == "__main__":
    main()
