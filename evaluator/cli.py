"""`evaluate`: score a folder of generated MNIST digits and write a result JSON."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from evaluator import mnist, results
from evaluator.cache import CACHE_ENV_VAR
from evaluator.display import label, make_console, team_text, visible
from evaluator.errors import EvaluatorError, ExitCode
from evaluator.published import host_prefixes, redact
from evaluator.reporting import Reporter
from evaluator.samples import DEFAULT_COUNT

# The pipeline (torch, the feature networks) is imported where it is used, never at start-up: help
# and usage errors answer without it.

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
    """Every metric of a result with its label, value (and 95% interval where bootstrapped), direction."""
    from evaluator.metrics import describe, label

    intervals = (result.get("uncertainty") or {}).get("intervals", {})
    table = Table(title=team_text(result["samples"]["directory"]))
    for column, justify in (("metric", "left"), ("name", "left"), ("value", "right"), ("95% interval", "right"),
                            ("better", "center")):
        table.add_column(column, justify=justify)
    for name, value in result["metrics"].items():
        entry = describe(name)
        shown = entry.formatted(value) if entry else str(value)
        interval = intervals.get(name)
        bounds = f"{entry.formatted(interval[0])}–{entry.formatted(interval[1])}" if interval and entry else ""
        table.add_row(label(name), name, shown, bounds, entry.arrow() if entry else "")
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
              help="Comma-separated feature spaces: mnist, inception (TF FID's network, slow on CPU), "
                   "vgg16 (fc2, as Kynkäänniemi et al. and the course's platform; weights from the torch hub cache; "
                   "use a GPU).")
@click.option("--reference-limit", type=click.IntRange(min=10), default=None,
              help="Smoke tests only: use the first N test images as the reference (never for rankings).")
@click.option("-k", "--k", "k", default=3, show_default=True, type=click.IntRange(min=1),
              help="Neighbourhood size for precision/recall and density/coverage.")
@click.option("--bootstrap", "bootstrap", type=click.IntRange(min=0), default=None,
              help="Bootstrap replicates for the 95% intervals [default: 200; 50 for Inception/VGG-16 on CPU]; "
                   "0: none.")
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
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed applied to random, numpy and torch before a team's code runs "
                   "[default: competition.toml's seed, else 0].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="competition.toml: the rule-violation policy (and the seed) for the summary.")
@click.option("--no-sandbox", is_flag=True,
              help="UNSAFE: run team code directly, without bubblewrap. Only for your own code.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def main(submissions: tuple[Path, ...], samples_dir: Path | None, name: str | None,
         results_dir: Path, json_path: Path | None, count: int, data_root: str | None,
         cache_dir: str | None, metric_names: str | None, feature_names: str,
         reference_limit: int | None, k: int, bootstrap: int | None, knn_backend: str, gpu: bool,
         timeout_s: float, memory: str, batch_size: int, scratch_dir: Path | None,
         seed: int | None, config_path: Path | None, no_sandbox: bool, debug: bool) -> None:
    """Evaluate MNIST GAN submissions (team folders) or a folder of generated PNGs.

    \b
      evaluate submission/ [more/ ...] [--gpu]   run each folder's generate.py in a sandbox, then score
      evaluate --samples DIR                     score a folder of PNGs

    \b
    Exit codes: 0 ok, 1 internal error, 2 usage error, 3 invalid samples (--samples),
    4 MNIST not found, 5 feature-network weights missing or corrupt,
    6 a submission's verdict was not OK, 7 bubblewrap missing (see --no-sandbox),
    130 interrupted (Ctrl-C).
    """
    console = make_console(stderr=True, soft_wrap=True)  # messages stay whole lines, greppable
    try:
        if bool(submissions) == (samples_dir is not None):
            raise click.UsageError("give either submission folders or --samples DIR (not both)")
        if samples_dir is not None and not samples_dir.is_dir():  # a typo must not become a team
            missing = "not a folder" if samples_dir.exists() else "not found"
            raise click.BadParameter(visible(f"{samples_dir} is {missing}"), param_hint="--samples")
        if submissions:
            _require_folders(submissions)
        if samples_dir is not None:
            code = _evaluate_samples(console, samples_dir, count, name, results_dir, json_path,
                                     lambda: _evaluation_options(count, data_root, cache_dir, metric_names,
                                                                 feature_names, reference_limit, k, knn_backend,
                                                                 gpu, bootstrap))
        else:
            options = _evaluation_options(count, data_root, cache_dir, metric_names, feature_names,
                                          reference_limit, k, knn_backend, gpu, bootstrap)
            from competition.config import CompetitionConfig, ConfigError
            from evaluator.sandbox.limits import Limits, parse_size

            try:
                limits = Limits(timeout_s=timeout_s, memory_bytes=parse_size(memory))
            except ValueError as err:
                raise click.BadParameter(str(err), param_hint="--memory") from err
            try:
                config = CompetitionConfig.load(config_path)
            except ConfigError as err:
                raise click.BadParameter(visible(err), param_hint="--config") from err
            code = _evaluate_submissions(console, submissions, name, results_dir, options, limits,
                                         batch_size, scratch_dir, no_sandbox, config,
                                         seed if seed is not None else config.seed)
    except click.ClickException:
        raise  # usage errors: click prints them and exits with 2
    except EvaluatorError as err:  # our own words, over several lines: newlines stay newlines
        console.print(label("error: ", "bold red", err, multiline=True))
        code = err.exit_code
    except KeyboardInterrupt:
        console.print(Text("interrupted", style="red"))
        code = ExitCode.INTERRUPTED
    except Exception as err:  # noqa: BLE001 - the promise is: never a traceback
        console.print(label("internal error: ", "bold red", f"{err.__class__.__name__}: {err}"))
        if debug:
            console.print(team_text(traceback.format_exc(), multiline=True))
        else:
            console.print("run again with --debug for the traceback")
        code = ExitCode.INTERNAL_ERROR
    sys.exit(int(code))


def _require_folders(folders: tuple[Path, ...]) -> None:
    """A mistyped path is the organiser's usage error, found before any team runs (no result)."""
    missing = [folder for folder in folders if not folder.is_dir()]
    if missing:
        described = ", ".join(visible(f"{folder} ({'not a folder' if folder.exists() else 'not found'})")
                              for folder in missing[:10])
        raise click.UsageError(f"submission folder(s) not found: {described}")


def _evaluation_options(count, data_root, cache_dir, metric_names, feature_names, reference_limit,
                        k, knn_backend, gpu, bootstrap) -> "EvaluationOptions":
    from evaluator.pipeline import EvaluationOptions

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
                             device=device, reference_limit=reference_limit, bootstrap=bootstrap)


def _progress(console: Console) -> Progress:
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, transient=False)


def _evaluate_samples(console: Console, samples_dir: Path, count: int, name, results_dir, json_path,
                      make_options: "Callable[[], EvaluationOptions]") -> ExitCode:
    """Validation starts first, in a child process, so that the PNGs are decoded while this one
    imports torch and the pipeline (`make_options` does): a warm quick evaluation 1 s sooner."""
    from evaluator.samples import BackgroundValidation

    validation = BackgroundValidation(samples_dir, count)
    try:
        options = make_options()
        from evaluator.pipeline import evaluate_samples

        with _progress(console) as progress:
            result = evaluate_samples(samples_dir, options, RichReporter(progress), validation)
    finally:
        validation.close()
    run_id = results.new_run_id()
    result["run_id"] = run_id
    result["name"] = name or Path(samples_dir).resolve().name
    path = json_path or default_result_path(results_dir, result["name"], run_id)
    results.write_json(path, redact(result, host_prefixes(submission=samples_dir, data_root=options.data_root,
                                                          cache_dir=options.cache_dir)))
    if result["status"] == "invalid_samples":
        console.print(Text("invalid samples", style="bold red"))
        console.print(team_text(result["validation"]["summary"], multiline=True))
        console.print(label("result written to ", "", path))
        return ExitCode.INVALID_SAMPLES
    make_console().print(metrics_table(result))
    _print_flags(console, result)
    console.print(label("result written to ", "", path))
    return ExitCode.OK


def _print_flags(console: Console, result: dict) -> None:
    for flag in result["flags"]:
        console.print(label(f"flag {flag['code']}: ", "bold yellow", flag["message"]))


def _print_submission(console: Console, result: dict, path: Path) -> None:
    """Everything about one team's run; every string that came from the team is shown as data."""
    from evaluator.sandbox.requirements import summarise

    if result["verdict"] == "OK":
        make_console().print(metrics_table(result))
    else:
        console.print(label(f"{result['verdict']}: ", "bold red", result["reason"]))
        if result.get("validation") and not result["validation"]["ok"]:
            console.print(team_text(result["validation"]["summary"], multiline=True))
    _print_flags(console, result)
    rule = result.get("rule_check") or {}
    if rule.get("status") == "not_checked" and rule.get("error"):
        console.print(label("warning (evaluation environment): ", "bold yellow", rule["error"]))
    grouped = summarise(result.get("requirements") or [], result.get("requirements_installed"))
    if grouped:
        severity, line = grouped
        console.print(label(f"{severity}: ", "yellow" if severity == "warning" else "dim", line))
    console.print(label("results in ", "", path.parent))


def _evaluate_submissions(console: Console, folders, name, results_dir, options, limits, batch_size,
                          scratch_dir, no_sandbox, config, seed) -> ExitCode:
    from competition.standing import Standing, standing
    from evaluator.sandbox.runner import INSTALL_HINT, bubblewrap
    from evaluator.submission import DEFAULT_SEED, SubmissionOptions, evaluate_submission, write_outputs

    if not no_sandbox and bubblewrap() is None:
        console.print(label("error: ", "bold red", INSTALL_HINT))
        return ExitCode.SANDBOX_UNAVAILABLE
    if no_sandbox:
        console.print(Text("warning: --no-sandbox: team code runs with your permissions", style="bold yellow"))
    if name and len(folders) > 1:
        raise click.UsageError("--name applies to a single submission")
    from evaluator.pipeline import require_data

    require_data(options)
    submission_options = SubmissionOptions(batch_size=batch_size, limits=limits, gpu=options.device == "cuda",
                                           sandbox=not no_sandbox,
                                           scratch_dir=str(scratch_dir) if scratch_dir else None,
                                           seed=DEFAULT_SEED if seed is None else seed)
    summary = []
    for index, folder in enumerate(folders, 1):
        entry = name or Path(folder).resolve().name
        try:
            console.rule(Text.assemble(team_text(entry, style="bold"), f" ({index}/{len(folders)})"))
            with _progress(console) as progress:
                result, log, images = evaluate_submission(folder, options, submission_options,
                                                          RichReporter(progress))
            run_id = results.new_run_id()
            result.update(run_id=run_id, name=entry)
            path = write_outputs(result, log, images, results_dir / entry / run_id, options.data_root,
                                 options.cache_dir)
            _print_submission(console, result, path)
            summary.append((entry, result["verdict"], standing(result, config.rule_violation),
                            result["reason"], result["metrics"].get("mnist.fid")))
        except EvaluatorError:
            raise  # missing MNIST or weights: the same for every submission
        except Exception as err:  # noqa: BLE001 - one team can never stop the batch
            console.print(label("internal error: ", "bold red", f"{folder}: {type(err).__name__}: {err}"))
            summary.append((entry, "ERROR", Standing.FAILED, f"{type(err).__name__}: {err}", None))
    table = Table(title="summary")
    for column in ("submission", "verdict", "standing", "mnist.fid", "reason"):
        table.add_column(column)
    styles = {Standing.RANKED: "green", Standing.UNRANKED: "yellow", Standing.DISQUALIFIED: "bold red",
              Standing.FAILED: "red"}
    for entry, verdict, place, reason, fid in summary:
        place_text = {Standing.UNRANKED: "unranked (rule violation)",
                      Standing.DISQUALIFIED: "disqualified (rule violation)"}.get(place, place.value)
        table.add_row(team_text(entry), Text(verdict, style="green" if verdict == "OK" else "red"),
                      Text(place_text, style=styles[place]), "" if fid is None else f"{fid:.3f}",
                      team_text(reason))
    make_console().print(table)
    return ExitCode.OK if all(row[1] == "OK" for row in summary) else ExitCode.SUBMISSION_FAILED


if __name__ == "__main__":
    main()
