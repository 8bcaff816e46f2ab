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
from evaluator.cache import CACHE_ENV_VAR
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
@click.argument("submissions", nargs=-1, type=click.Path(path_type=Path))
@click.option("--samples", "samples_dir", type=click.Path(path_type=Path), default=None,
              help="Score a folder of PNGs (0.png ... N-1.png) instead of running submissions.")
@click.option("--name", default=None, help="Name of the entry (default: the folder's name).")
@click.option("-o", "--results-dir", type=click.Path(path_type=Path), default=Path("results"),
              show_default=True, help="Results go to RESULTS_DIR/NAME/RUN_ID/.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="With --samples: write the result JSON exactly here instead.")
@click.option("--count", default=DEFAULT_COUNT, show_default=True, type=click.IntRange(min=4),
              help="Number of PNGs expected.")
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None, show_envvar=True,
              help="Folder containing MNIST/raw (torchvision layout).")
@click.option("--cache-dir", envvar=CACHE_ENV_VAR, default=None, show_envvar=True,
              help="Where reference statistics are cached [default: ~/.cache/mnist-gan-eval].")
@click.option("--metrics", "metric_names", default=None,
              help="Comma-separated subset of metrics (default: all).")
@click.option("--features", "feature_names", default="mnist", show_default=True,
              help="Comma-separated feature spaces: mnist, inception (TF FID's network, slow on CPU).")
@click.option("--reference-limit", type=click.IntRange(min=10), default=None,
              help="Smoke tests only: use the first N test images as the reference (never for rankings).")
@click.option("-k", "--k", "k", default=3, show_default=True, type=click.IntRange(min=1),
              help="Neighbourhood size for precision/recall and density/coverage.")
@click.option("--knn", "knn_backend", type=click.Choice(["auto", "kdtree", "brute"]),
              default="auto", show_default=True, help="Exact k-NN backend.")
@click.option("--gpu", is_flag=True, help="Give submissions the NVIDIA GPU; compute features and k-NN on CUDA.")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds a submission's generate.py may run.")
@click.option("--memory", default="8G", show_default=True, help="Memory limit of a submission, e.g. 4G.")
@click.option("--batch-size", default=2048, show_default=True, type=click.IntRange(min=1),
              help="Passed to generate.py as --batch_size.")
@click.option("--scratch-dir", type=click.Path(path_type=Path), default=None,
              help="Where submissions are copied to run [default: the system temp folder].")
@click.option("--no-sandbox", is_flag=True,
              help="UNSAFE: run team code directly, without bubblewrap. Only for your own code.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def main(submissions: tuple[Path, ...], samples_dir: Path | None, name: str | None,
         results_dir: Path, json_path: Path | None, count: int, data_root: str | None,
         cache_dir: str | None, metric_names: str | None, feature_names: str,
         reference_limit: int | None, k: int, knn_backend: str, gpu: bool,
         timeout_s: float, memory: str, batch_size: int, scratch_dir: Path | None,
         no_sandbox: bool, debug: bool) -> None:
    """Evaluate MNIST GAN submissions (team folders) or a folder of generated PNGs.

    \b
      evaluate submission/ [more/ ...] [--gpu]   run each folder's generate.py in a sandbox, then score
      evaluate --samples DIR                     score a folder of PNGs

    \b
    Exit codes: 0 ok, 1 internal error, 2 usage error, 3 invalid samples (--samples),
    4 MNIST not found, 5 feature-network weights missing or corrupt,
    6 a submission's verdict was not OK, 7 bubblewrap missing (see --no-sandbox).
    """
    console = Console(stderr=True, soft_wrap=True)  # messages stay whole lines, greppable
    try:
        if bool(submissions) == (samples_dir is not None):
            raise click.UsageError("give either submission folders or --samples DIR (not both)")
        options = _evaluation_options(count, data_root, cache_dir, metric_names, feature_names,
                                      reference_limit, k, knn_backend, gpu)
        if samples_dir is not None:
            code = _evaluate_samples(console, samples_dir, name, results_dir, json_path, options)
        else:
            from evaluator.sandbox.limits import Limits, parse_size

            try:
                limits = Limits(timeout_s=timeout_s, memory_bytes=parse_size(memory))
            except ValueError as err:
                raise click.BadParameter(str(err), param_hint="--memory") from err
            code = _evaluate_submissions(console, submissions, name, results_dir, options, limits,
                                         batch_size, scratch_dir, no_sandbox)
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


def _evaluation_options(count, data_root, cache_dir, metric_names, feature_names, reference_limit,
                        k, knn_backend, gpu) -> EvaluationOptions:
    device = "cpu"
    if gpu:
        import torch

        if not torch.cuda.is_available():
            raise click.UsageError("--gpu was given but CUDA is not available here")
        device = "cuda"
    selected = tuple(n.strip() for n in metric_names.split(",") if n.strip()) if metric_names else None
    if selected:
        from evaluator.metrics import select

        try:
            select(list(selected))
        except KeyError as err:
            raise click.BadParameter(str(err.args[0]), param_hint="--metrics") from err
    from evaluator.features import FEATURE_EXTRACTORS

    spaces = tuple(dict.fromkeys(n.strip() for n in feature_names.split(",") if n.strip()))
    unknown = sorted(set(spaces) - set(FEATURE_EXTRACTORS))
    if unknown or not spaces:
        raise click.BadParameter(f"unknown feature space(s) {unknown}; available: "
                                 f"{sorted(FEATURE_EXTRACTORS)}", param_hint="--features")
    return EvaluationOptions(expected_count=count, data_root=data_root, cache_dir=cache_dir,
                             feature_spaces=spaces, metrics=selected, k=k, knn_backend=knn_backend,
                             device=device, reference_limit=reference_limit)


def _progress(console: Console) -> Progress:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=False)


def _evaluate_samples(console: Console, samples_dir, name, results_dir, json_path,
                      options: EvaluationOptions) -> ExitCode:
    with _progress(console) as progress:
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


def _evaluate_submissions(console: Console, folders, name, results_dir, options, limits, batch_size,
                          scratch_dir, no_sandbox) -> ExitCode:
    from evaluator.sandbox.runner import INSTALL_HINT, bubblewrap
    from evaluator.submission import SubmissionOptions, evaluate_submission, write_outputs

    if not no_sandbox and bubblewrap() is None:
        console.print(f"[bold red]error:[/] {INSTALL_HINT}", highlight=False)
        return ExitCode.SANDBOX_UNAVAILABLE
    if no_sandbox:
        console.print("[bold yellow]warning:[/] --no-sandbox: team code runs with your permissions")
    if name and len(folders) > 1:
        raise click.UsageError("--name applies to a single submission")
    from evaluator.pipeline import require_data

    require_data(options)
    submission_options = SubmissionOptions(batch_size=batch_size, limits=limits, gpu=options.device == "cuda",
                                           sandbox=not no_sandbox,
                                           scratch_dir=str(scratch_dir) if scratch_dir else None)
    summary = []
    for index, folder in enumerate(folders, 1):
        entry = name or Path(folder).resolve().name
        console.rule(f"[bold]{entry}[/] ({index}/{len(folders)})")
        try:
            with _progress(console) as progress:
                result, log, images = evaluate_submission(folder, options, submission_options,
                                                          RichReporter(progress))
        except EvaluatorError:
            raise  # missing MNIST or weights: the same for every submission
        except Exception as err:  # noqa: BLE001 - carry on with the next submission
            console.print(f"[bold red]internal error on {folder}:[/] {type(err).__name__}: {err}")
            summary.append((entry, "ERROR", f"{type(err).__name__}: {err}", None, ""))
            continue
        run_id = results.new_run_id()
        result.update(run_id=run_id, name=entry)
        path = write_outputs(result, log, images, results_dir / entry / run_id)
        if result["verdict"] == "OK":
            Console().print(metrics_table(result))
        else:
            console.print(f"[bold red]{result['verdict']}[/]: {result['reason']}", highlight=False)
            if result.get("validation") and not result["validation"]["ok"]:
                console.print(result["validation"]["summary"], highlight=False)
        for flag in result["flags"]:
            console.print(f"[bold yellow]flag {flag['code']}:[/] {flag['message']}", highlight=False)
        console.print(f"results in {path.parent}")
        summary.append((entry, result["verdict"], result["reason"],
                        result["metrics"].get("mnist.fid"), str(path.parent)))
    table = Table(title="summary")
    for column in ("submission", "verdict", "mnist.fid", "reason"):
        table.add_column(column)
    for entry, verdict, reason, fid, _ in summary:
        style = "green" if verdict == "OK" else "red"
        table.add_row(entry, f"[{style}]{verdict}", "" if fid is None else f"{fid:.3f}", reason)
    Console().print(table)
    return ExitCode.OK if all(row[1] == "OK" for row in summary) else ExitCode.SUBMISSION_FAILED


if __name__ == "__main__":
    main()
