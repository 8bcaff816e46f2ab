"""`evaluate`: score a folder of generated MNIST digits and write a result JSON."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from evaluator import mnist, results
from evaluator.errors import EvaluatorError, ExitCode
from evaluator.pipeline import EvaluationOptions, Reporter, evaluate_samples
from evaluator.reference import CACHE_ENV_VAR
from evaluator.samples import DEFAULT_COUNT

# Direction and format of each metric in the printed table.
DISPLAY = {
    "fid": ("lower", "{:.3f}"), "precision": ("higher", "{:.4f}"), "recall": ("higher", "{:.4f}"),
    "density": ("~1", "{:.4f}"), "coverage": ("higher", "{:.4f}"),
    "tv_distance": ("lower", "{:.4f}"), "digits_present": ("10", "{}"),
    "mean_confidence": ("higher", "{:.4f}"), "near_copy_fraction": ("lower", "{:.4f}"),
    "nn_distance_median": ("", "{:.3f}"), "nn_distance_min": ("", "{:.3f}"), "flagged": ("", "{}"),
}


class RichReporter(Reporter):
    """Shows each stage as a progress line (a bar where the stage has a known size)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def stage(self, name, total=None):
        task = self.progress.add_task(name, total=total)
        self.tasks[name] = task
        return lambda advance=1: self.progress.advance(task, advance)

    def done(self, name, seconds, note=""):
        task = self.tasks.get(name)
        if task is not None:
            total = self.progress.tasks[task].total or 1
            suffix = f" ({note})" if note else ""
            self.progress.update(task, total=total, completed=total,
                                 description=f"{name}{suffix} [dim]{seconds:.2f}s")


def metrics_table(result: dict) -> Table:
    table = Table(title=f"{result['samples']['directory']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("better", justify="center")
    for name, value in result["metrics"].items():
        direction, fmt = DISPLAY.get(name.rsplit(".", 1)[-1], ("", "{}"))
        table.add_row(name, fmt.format(value), direction)
    return table


def default_result_path(results_dir: Path, name: str, run_id: str) -> Path:
    return results_dir / name / run_id / "result.json"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--samples", "samples_dir", type=click.Path(path_type=Path), required=True,
              help="Folder holding 0.png ... N-1.png.")
@click.option("--name", default=None, help="Name of this entry (default: the folder's name).")
@click.option("-o", "--results-dir", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Results go to RESULTS_DIR/NAME/RUN_ID/result.json.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="Write the result JSON exactly here instead.")
@click.option("--count", default=DEFAULT_COUNT, show_default=True, type=click.IntRange(min=4),
              help="Number of PNGs expected.")
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None, show_envvar=True,
              help="Folder containing MNIST/raw (torchvision layout).")
@click.option("--cache-dir", envvar=CACHE_ENV_VAR, default=None, show_envvar=True,
              help="Where reference statistics are cached [default: ~/.cache/mnist-gan-eval].")
@click.option("--metrics", "metric_names", default=None,
              help="Comma-separated subset of metrics (default: all).")
@click.option("-k", "--k", "k", default=3, show_default=True, type=click.IntRange(min=1),
              help="Neighbourhood size for precision/recall and density/coverage.")
@click.option("--knn", "knn_backend", type=click.Choice(["auto", "kdtree", "brute"]),
              default="auto", show_default=True, help="Exact k-NN backend.")
@click.option("--gpu", is_flag=True, help="Compute features and k-NN on CUDA.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def main(samples_dir: Path, name: str | None, results_dir: Path, json_path: Path | None, count: int,
         data_root: str | None, cache_dir: str | None, metric_names: str | None, k: int,
         knn_backend: str, gpu: bool, debug: bool) -> None:
    """Evaluate a folder of generated MNIST PNGs against the MNIST test split.

    Exit codes: 0 ok, 1 internal error, 2 usage error, 3 invalid samples,
    4 MNIST data not found, 5 feature-network weights missing or corrupt.
    """
    console = Console(stderr=True)
    try:
        code = _evaluate(console, samples_dir, name, results_dir, json_path, count, data_root,
                         cache_dir, metric_names, k, knn_backend, gpu)
    except click.ClickException:
        raise  # usage errors: click prints them and exits with 2
    except EvaluatorError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False)
        code = err.exit_code
    except KeyboardInterrupt:
        console.print("[red]interrupted")
        code = ExitCode.INTERNAL_ERROR
    except Exception as err:  # noqa: BLE001 - the promise is: never a traceback
        console.print(f"[bold red]internal error:[/] {err.__class__.__name__}: {err}", highlight=False)
        if debug:
            console.print(traceback.format_exc(), highlight=False)
        else:
            console.print("run again with --debug for the traceback")
        code = ExitCode.INTERNAL_ERROR
    sys.exit(int(code))


def _evaluate(console: Console, samples_dir, name, results_dir, json_path, count, data_root,
              cache_dir, metric_names, k, knn_backend, gpu) -> ExitCode:
    device = "cpu"
    if gpu:
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--gpu was given but CUDA is not available here")
        device = "cuda"
    selected = tuple(n.strip() for n in metric_names.split(",") if n.strip()) if metric_names else None
    options = EvaluationOptions(expected_count=count, data_root=data_root, cache_dir=cache_dir,
                                metrics=selected, k=k, knn_backend=knn_backend, device=device)
    if selected:
        from evaluator.metrics import select

        try:
            select(list(selected))
        except KeyError as err:
            raise click.BadParameter(str(err.args[0]), param_hint="--metrics") from err
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        result = evaluate_samples(samples_dir, options, RichReporter(progress))

    run_id = results.new_run_id()
    result["run_id"] = run_id
    result["name"] = name or Path(samples_dir).resolve().name
    path = json_path or default_result_path(results_dir, result["name"], run_id)
    results.write_json(path, result)
    if result["status"] == "invalid_samples":
        console.print(f"[bold red]invalid samples[/]\n{result['validation']['summary']}",
                      highlight=False)
        console.print(f"result written to {path}")
        return ExitCode.INVALID_SAMPLES
    Console().print(metrics_table(result))
    for flag in result["flags"]:
        console.print(f"[bold yellow]flag {flag['code']}:[/] {flag['message']}")
    console.print(f"result written to {path}")
    return ExitCode.OK


if __name__ == "__main__":
    main()
