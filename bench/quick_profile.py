"""Where a warm quick evaluation spends its time: `evaluate --samples` on 10K PNGs, stage by stage,
in wall and CPU seconds (the pipeline's own progress hooks mark the stages).

The kit's generator writes `--count` PNGs once; one evaluation warms every on-disk cache (reference
statistics, the copy detector, the copying test); then `--repeats` evaluations, each in a fresh
process as `evaluate --samples` runs, are timed and the fastest is reported, with the process's
start-up (interpreter, imports) as a stage of its own. As in `evaluate`, the PNGs are validated in
a child process during the start-up: `validate` is the time still waited for it after the start-up,
with the child's CPU time. With `--compare FILE` the stages are set against a committed profile of the
same machine (a guard against creeping back), and `--out FILE` writes this run as that profile. A
shared machine's speed drifts (the same code here took 8.2 s one day and 10.1 s the next): `--against
REV` profiles commit REV from a temporary git worktree, each of its runs right before one of this
checkout's, and sets the two side by side.

    MNIST_ROOT=../shared/data python bench/quick_profile.py [--repeats 3] [--compare bench/quick_profile.md]
    MNIST_ROOT=../shared/data python bench/quick_profile.py --against HEAD~1
"""

from __future__ import annotations

import json
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from evaluator import mnist  # noqa: E402
from evaluator.reporting import Reporter  # noqa: E402
from evaluator.samples import BackgroundValidation  # noqa: E402

# torch and the pipeline are imported after the samples' validation has started, as `evaluate`
# does (cli._evaluate_samples): the PNGs are decoded while they load.


class StageClock(Reporter):
    """Wall and CPU seconds of every stage the pipeline announces."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[float, float]] = {}
        self.stages: dict[str, tuple[float, float]] = {}

    def stage(self, name, total=None):
        self.started[name] = (time.perf_counter(), time.process_time())
        return lambda advance=1: None

    def done(self, name, seconds, note=""):
        wall, cpu = self.started.pop(name, (time.perf_counter(), time.process_time()))
        self.stages[_stage_name(name)] = (time.perf_counter() - wall, time.process_time() - cpu)


def _stage_name(name: str) -> str:
    return re.sub(r"\s*\(\d+ replicates\)|, \d+ replicates", "", name)


def profile(samples: Path, options, validation: BackgroundValidation | None = None
            ) -> tuple[dict[str, tuple[float, float]], float, float]:
    from evaluator.pipeline import evaluate_samples

    clock = StageClock()
    wall, cpu = time.perf_counter(), time.process_time()
    evaluate_samples(samples, options, clock, validation)
    return clock.stages, time.perf_counter() - wall, time.process_time() - cpu


def read_profile(path: Path) -> dict[str, float]:
    """stage -> wall seconds, from a profile this command wrote."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) >= 3 and cells[1].replace(".", "", 1).isdigit():
            rows[cells[0]] = float(cells[1])
    return rows


def fresh_process(samples: Path, count: int, data_root: str | None, cache_dir: str | None,
                  script: Path = Path(__file__)) -> tuple[dict[str, tuple[float, float]], float, float]:
    """One profile in a new interpreter (no in-process cache survives), start-up included; `script`
    is this file in another checkout for `--against`."""
    began = time.perf_counter()
    command = [sys.executable, str(script), "--inner", str(samples), "--count", str(count)]
    for option, value in (("--data-root", data_root), ("--cache-dir", cache_dir)):
        if value:
            command += [option, value]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    stages = {name: tuple(value) for name, value in inner["stages"].items()}
    stages["start-up (interpreter, imports)"] = (wall - inner["wall"], inner["startup_cpu"])
    return stages, wall, inner["cpu"] + inner["startup_cpu"]


@click.command()
@click.option("--count", default=10_000, show_default=True)
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--data-root", envvar=mnist.ENV_VAR, default=None)
@click.option("--cache-dir", envvar="EVALUATOR_CACHE", default=None)
@click.option("--compare", "compare_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--against", "against", default=None, metavar="REV",
              help="Also profile commit REV (a temporary git worktree), its runs interleaved with this "
                   "checkout's: a change measured on a machine whose speed drifts.")
@click.option("--inner", "inner_samples", type=click.Path(path_type=Path), default=None, hidden=True)
def main(count: int, repeats: int, data_root: str | None, cache_dir: str | None, compare_path: Path | None,
         out_path: Path | None, against: str | None, inner_samples: Path | None) -> None:
    if inner_samples is not None:  # one profile, as JSON, for the parent process
        validation = BackgroundValidation(inner_samples, count)
        from evaluator.pipeline import EvaluationOptions

        options = EvaluationOptions(expected_count=count, data_root=data_root, cache_dir=cache_dir)
        startup_cpu = time.process_time()
        stages, wall, cpu = profile(inner_samples, options, validation)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the validation's process, done
        child_cpu = children.ru_utime + children.ru_stime
        stages["validate"] = (stages["validate"][0], stages["validate"][1] + child_cpu)
        cpu += child_cpu
        print(json.dumps({"stages": stages, "wall": wall, "cpu": cpu, "startup_cpu": startup_cpu}))
        return
    import torch
    from data_copying import generator_samples

    from evaluator.pipeline import EvaluationOptions
    from evaluator.samples import write_samples

    options = EvaluationOptions(expected_count=count, data_root=data_root, cache_dir=cache_dir)

    with tempfile.TemporaryDirectory(prefix="quick-profile-") as folder:
        samples = write_samples(generator_samples(None, count), Path(folder) / "samples")
        profile(samples, options)  # warms every on-disk cache
        if against is None:
            runs = [fresh_process(samples, count, data_root, cache_dir) for _ in range(repeats)]
        else:
            with _worktree(against, Path(folder) / "against") as script:
                fresh_process(samples, count, data_root, cache_dir, script)  # warms that revision's caches
                pairs = [(fresh_process(samples, count, data_root, cache_dir, script),
                          fresh_process(samples, count, data_root, cache_dir)) for _ in range(repeats)]
            other_runs, runs = [pair[0] for pair in pairs], [pair[1] for pair in pairs]
    stages, wall, cpu = min(runs, key=lambda run: run[1])
    other = wall - sum(w for w, _ in stages.values())
    lines = [f"Warm `evaluate --samples` on {count:,} PNGs of the kit's generator, fastest of {repeats}: "
             f"{wall:.2f} s wall, {cpu:.2f} s CPU. {date.today().isoformat()}, {platform.machine()}, "
             f"{torch.get_num_threads()} torch threads (`python bench/quick_profile.py`).", "",
             "| stage | wall s | CPU s | share of wall |", "|---|---:|---:|---:|"]
    for name, (stage_wall, stage_cpu) in sorted(stages.items(), key=lambda item: -item[1][0]):
        lines.append(f"| {name} | {stage_wall:.2f} | {stage_cpu:.2f} | {stage_wall / wall:.0%} |")
    lines.append(f"| (between stages) | {max(other, 0):.2f} | | {max(other, 0) / wall:.0%} |")
    lines.append(f"| total | {wall:.2f} | {cpu:.2f} | 100% |")
    print("\n".join(lines))
    if against is not None:  # the same runs, set against the other revision's
        print(f"{against}, fastest of {repeats}: {min(run[1] for run in other_runs):.2f} s wall; this checkout, "
              f"each run right after one of those: {wall:.2f} s wall")
        other_stages = min(other_runs, key=lambda run: run[1])[0]
        for name in sorted(set(stages) | set(other_stages), key=lambda n: -stages.get(n, (0, 0))[0]):
            before, after = other_stages.get(name, (0.0, 0.0))[0], stages.get(name, (0.0, 0.0))[0]
            print(f"  {name}: {before:.2f} -> {after:.2f} s ({after - before:+.2f})")
    if compare_path is not None:
        before = read_profile(compare_path)
        print(f"\nagainst {compare_path}:")
        for name, seconds in {**{k: v[0] for k, v in stages.items()}, "total": wall}.items():
            if name in before:
                print(f"  {name}: {before[name]:.2f} -> {seconds:.2f} s ({seconds - before[name]:+.2f})")
    if out_path is not None:
        out_path.write_text("\n".join(lines) + "\n")


@contextmanager
def _worktree(revision: str, checkout: Path):
    """This file in a detached git worktree of `revision`, removed afterwards."""
    added = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", "--", str(checkout),
                            revision], capture_output=True, text=True)
    if added.returncode != 0:
        raise click.ClickException(f"cannot check out {revision!r}: {added.stderr.strip()}")
    try:
        yield checkout / "bench" / "quick_profile.py"
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", "--", str(checkout)], check=False)


if __name__ == "__main__":
    main()
