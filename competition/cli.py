"""`competition`: run a round over the roster of competition.toml, see where it stands.

    competition round competition.toml [--jobs N] [--backend local|slurm] [--force TEAM] [--gpus 0,1]
    competition status competition.toml
    competition seed competition.toml          # reveal the secret seed (once the round is over)
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from competition.backends import Reporter, run_local, run_slurm
from competition.config import CompetitionConfig, ConfigError
from competition.journal import Journal, RoundState, TeamState
from competition.round import Round, RoundError, latest_round
from competition.slurm import SlurmError
from evaluator.display import label, make_console, team_text, visible
from evaluator.errors import EvaluatorError, ExitCode


def _load(config_path: Path) -> CompetitionConfig:
    try:
        config = CompetitionConfig.load(config_path)
    except ConfigError as err:
        raise click.UsageError(visible(err)) from err
    return config


class PlainReporter(Reporter):
    """One line per team, for logs and pipes."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total, self.done = console, total, 0

    def _line(self, text: Text) -> None:
        self.console.print(text, soft_wrap=True)

    def started(self, team: str, where: str = "") -> None:
        pass

    def finished(self, team: str, marker: dict) -> None:
        self.done += 1
        fid = marker.get("fid")
        score = f", mnist.fid {fid:.3f}" if isinstance(fid, (int, float)) else ""
        seconds, startup = (marker.get("seconds", {}).get(name) for name in ("evaluate", "start-up"))
        took = (f", {seconds:.1f} s" if seconds else "") + (f" (+{startup:.1f} s start-up)" if startup else "")
        standing = marker.get("standing")
        shown = f" ({standing}" + (f": {', '.join(marker['flags'])}" if marker.get("flags") else "") + ")" \
            if standing and (standing != "ranked" or marker.get("flags")) else ""
        self._line(Text.assemble(f"[{self.done}/{self.total}] {team}: ", (marker["verdict"], "bold"), shown,
                                 score, took, " ", team_text(marker.get("reason", ""), style="dim")))

    def failed(self, team: str, reason: str) -> None:
        self.done += 1
        self._line(Text.assemble(f"[{self.done}/{self.total}] {team}: ", ("FAILED", "bold red"), " ",
                                 team_text(reason)))

    def note(self, text: str) -> None:
        self._line(team_text(text, style="dim"))


class RichReporter(PlainReporter):
    """A progress bar over the round, the same lines above it."""

    def __init__(self, console: Console, total: int, progress: Progress) -> None:
        super().__init__(console, total)
        self.progress = progress
        self.task = progress.add_task("evaluating", total=total)
        self.notes: dict[str, float] = {}

    def _line(self, text: Text) -> None:
        self.progress.console.print(text, soft_wrap=True)

    def finished(self, team: str, marker: dict) -> None:
        super().finished(team, marker)
        self.progress.advance(self.task)

    def failed(self, team: str, reason: str) -> None:
        super().failed(team, reason)
        self.progress.advance(self.task)

    def started(self, team: str, where: str = "") -> None:
        self.progress.update(self.task, description=f"evaluating (last started: {team})")

    def note(self, text: str) -> None:  # pending reasons repeat every poll: show each once a minute
        if time.monotonic() - self.notes.get(text, -60.0) >= 60.0:
            self.notes[text] = time.monotonic()
            super().note(text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Competition rounds over a roster (competition.toml): resumable, parallel, or on Slurm."""


@main.command("round")
@click.argument("config_path", metavar="COMPETITION_TOML", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Evaluations at once on this machine [default: competition.toml's jobs, else 1].")
@click.option("--backend", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--force", "forced", multiple=True, metavar="TEAM",
              help="Evaluate TEAM even if its code and the settings are unchanged (repeatable).")
@click.option("--gpus", default=None, metavar="0,1", help="GPU slots for local jobs (CUDA_VISIBLE_DEVICES).")
@click.option("--new-seed", is_flag=True, help='With seed = "secret": draw a new secret seed for this round.')
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
def round_command(config_path: Path, jobs: int | None, backend: str, forced: tuple[str, ...], gpus: str | None,
                  new_seed: bool, debug: bool) -> None:
    """Fetch every team, skip the unchanged ones, evaluate the rest, rebuild the leaderboard.

    Run the same command again after an interruption: the round continues where it stopped.
    """
    config = _load(config_path)
    if not config.teams:
        raise click.UsageError(f"{config_path} has no [[teams]]")
    console = make_console(stderr=True)
    run = Round(config, new_seed=new_seed)
    try:
        resumed = run.open()
        console.print(Text.assemble(("round ", "bold"), run.round_dir.name, " resumed" if resumed else " started",
                                    f" ({len(config.teams)} teams, backend {backend})"))
        pending = run.plan(set(forced), progress=lambda team, what, detail: console.print(
            Text.assemble(f"  {team}: ", (what, "dim"), " ", team_text(detail, style="dim")), soft_wrap=True))
        _warm_references(config, console)
        if pending:
            _dispatch(run, pending, backend, jobs or config.jobs, gpus, console)
        index = run.finish()
        _print_state(console, run.state(), config)
        if index is not None:
            console.print(label("leaderboard: ", "bold", index))
    except RoundError as err:
        console.print(label("error: ", "bold red", err))
        sys.exit(int(ExitCode.USAGE_ERROR))
    except SlurmError as err:  # the round keeps its journal: the same command resumes once Slurm answers
        console.print(label("Slurm error: ", "bold red", err))
        sys.exit(int(ExitCode.INTERNAL_ERROR))
    except EvaluatorError as err:
        console.print(label("error: ", "bold red", err))
        sys.exit(int(err.exit_code))
    except KeyboardInterrupt:
        console.print(Text("interrupted: run the same command to continue this round", style="yellow"))
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the journal keeps the round; the organiser gets one line
        console.print(label("internal error: ", "bold red", f"{type(err).__name__}: {err}"))
        if debug:
            console.print(team_text(traceback.format_exc(), multiline=True))
        sys.exit(int(ExitCode.INTERNAL_ERROR))
    finally:
        run.close()


def _dispatch(run: Round, pending: list[str], backend: str, jobs: int, gpus: str | None, console: Console) -> None:
    slots = [g.strip() for g in gpus.split(",") if g.strip()] if gpus else None
    if console.is_terminal:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            reporter = RichReporter(console, len(pending), progress)
            _run_backend(run, pending, backend, jobs, slots, reporter)
    else:
        _run_backend(run, pending, backend, jobs, slots, PlainReporter(console, len(pending)))


def _run_backend(run, pending, backend, jobs, slots, reporter) -> None:
    if backend == "slurm":
        run_slurm(run, pending, reporter)
    else:
        run_local(run, pending, jobs, reporter, slots)


def _warm_references(config: CompetitionConfig, console: Console) -> None:
    """Compute the reference statistics once, before the tasks that all need them."""
    from evaluator.features import make_extractor
    from evaluator.reference import load_reference

    for space in config.features:
        reference = load_reference(make_extractor(space, "cuda" if config.gpu else "cpu"))
        if reference.cache_status != "hit":
            console.print(Text(f"  reference statistics ({space}): {reference.cache_status}", style="dim"))


def _print_state(console: Console, state: RoundState, config: CompetitionConfig | None = None) -> None:
    """The round's table: each team's state in this round, and the result that stands for it (its
    verdict, standing and flags, and the round that evaluated it: an older one for a skipped team)."""
    if config is not None:
        _fill_from_results(state, config)
    table = Table(title=f"round {state.round_id}" + (" (finished)" if state.finished else ""))
    widest = max((len(name) for name in state.teams), default=4)
    table.add_column("team", no_wrap=True, min_width=min(widest, 30))
    for column, width in (("state", 7), ("verdict", 12), ("standing", 12), ("flags", 5), ("evaluated in", 16),
                          ("tries", 5), ("start s", 7), ("eval s", 6)):
        table.add_column(column, no_wrap=True, min_width=width)
    output = make_console()
    fixed = min(widest, 30) + 7 + 12 + 12 + 5 + 16 + 5 + 7 + 6 + 3 * 10 + 5  # the columns, padding and borders
    table.add_column("reason", no_wrap=True, overflow="ellipsis", max_width=max(output.width - fixed, 12))
    for team in sorted(state.teams.values(), key=lambda t: t.name):
        verdict = team.verdict or ""
        if team.state == "skipped" and team.previous_verdict:
            verdict = team.previous_verdict
        table.add_row(team.name, team.state, verdict, team.standing or "", ",".join(team.flags),
                      team.evaluated_in or "", str(team.attempts), _seconds(team.seconds.get("start-up")),
                      _seconds(team.seconds.get("evaluate")),
                      team_text(team.reason))
    output.print(table)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(state.counts().items()))
    console.print(Text(counts or "no teams"))


def _fill_from_results(state: RoundState, config: CompetitionConfig) -> None:
    """Teams this round did not evaluate or refer to: their latest result, if any."""
    from competition.round import existing_results, outcome_of

    results_dir = config.path(config.results_dir)
    for team in state.teams.values():
        if team.standing is not None or team.state in ("running",):
            continue
        found = existing_results(results_dir, team.name)
        if team.result or found:
            outcome = outcome_of(team.result or found[-1][0], config.rule_violation)
            team.standing, team.flags = outcome.get("standing"), outcome.get("flags", [])
            team.evaluated_in, team.previous_verdict = outcome.get("evaluated_in"), outcome.get("previous_verdict")


def _seconds(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else ""


@main.command()
@click.argument("config_path", metavar="COMPETITION_TOML", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--round", "round_id", default=None, help="A round's id [default: the latest].")
@click.option("--json", "as_json", is_flag=True, help="The state as JSON.")
def status(config_path: Path, round_id: str | None, as_json: bool) -> None:
    """Where the round stands: done, running, pending, failed, skipped, and each step's time."""
    config = _load(config_path)
    rounds = config.path(config.state_dir) / "rounds"
    folder = rounds / round_id if round_id else latest_round(rounds)
    if folder is None or not (folder / "journal.jsonl").exists():
        raise click.UsageError(f"no round{' ' + round_id if round_id else ''} under {rounds}")
    state = RoundState.replay(folder.name, Journal(folder / "journal.jsonl").events())
    for team in config.teams:  # on the roster, not reached yet
        state.teams.setdefault(team.name, TeamState(team.name))
    _fill_from_results(state, config)
    if as_json:
        click.echo(json.dumps({"round": state.round_id, "finished": state.finished,
                               "teams": {name: vars(team) for name, team in state.teams.items()}}, indent=2))
        return
    _print_state(make_console(stderr=True), state)


@main.command()
@click.argument("round_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--team", default=None)
@click.option("--tasks", "tasks_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None)
@click.option("--index", type=int, default=None)
def task(round_dir: Path, team: str | None, tasks_file: Path | None, index: int | None) -> None:
    """(internal) Evaluate one team of a planned round; run by the round, locally or as a Slurm task."""
    from competition.task import TaskError, run_task

    if team is None:
        if tasks_file is None or index is None:
            raise click.UsageError("give --team, or --tasks and --index")
        team = json.loads(tasks_file.read_text())[index]
    try:
        marker = run_task(round_dir.resolve(), team)
    except (TaskError, EvaluatorError) as err:
        click.echo(f"task error: {visible(err)}", err=True)
        sys.exit(int(ExitCode.INTERNAL_ERROR))
    click.echo(json.dumps(marker))


@main.command()
@click.argument("config_path", metavar="COMPETITION_TOML", type=click.Path(dir_okay=False, path_type=Path))
def seed(config_path: Path) -> None:
    """Print the competition's seed (the secret one too: reveal it once the round is over)."""
    from competition.round import round_seed

    config = _load(config_path)
    if config.seed == "secret" and not (config.path(config.state_dir) / "seed").exists():
        raise click.UsageError("no secret seed has been drawn yet (no round has run)")
    click.echo(round_seed(config))
