"""Round benchmark: 30 team folders (the kit and the baselines, and copies of them that draw their
latents with other seeds), evaluated as a round with --jobs 1, again with nothing changed, with
--jobs 2, and on a real one-node Slurm (as root, with slurm-wlm and munge installed); then the
measured per-team times projected onto a cluster.

    MNIST_ROOT=../shared/data python bench/round_benchmark.py [--teams 30] [--samples 10000]

Writes a Markdown report (bench/round-results.md by default) whose tables go into the README.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from baselines.recipes import assemble  # noqa: E402


def team_folders(root: Path, count: int) -> list[str]:
    """`count` distinct submissions: the kit, every baseline, then copies drawing with other seeds."""
    sources = [REPO / "submission", *assemble(out_dir=root.parent / "baselines")]
    names = []
    for index in range(count):
        source = sources[index % len(sources)]
        name = source.name if index < len(sources) else f"{source.name}-seed{index}"
        folder = root / name
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("samples", "__pycache__"))
        if index >= len(sources):  # the same network, its own latent draws: another submission
            script = (folder / "generate.py").read_text()
            folder.joinpath("generate.py").write_text(script.replace(
                '"--seed", type=int, default=None', f'"--seed", type=int, default={index}'))
        names.append(name)
    return names


def write_config(root: Path, names: list[str], samples: int, slurm: bool) -> Path:
    lines = [f"state_dir = \".competition\"\n[limits]\nsamples = {samples}\n"]
    if slurm:
        lines.append('[slurm]\ntime = "30"\nmem = "6000M"\ncpus_per_task = 1\npoll = 2\n')
    lines += [f'[[teams]]\nname = "{n}"\nsource = "teams/{n}"\n' for n in names]
    path = root / "competition.toml"
    path.write_text("\n".join(lines))
    return path


def fresh(root: Path) -> None:
    for folder in ("results", "site", ".competition"):
        shutil.rmtree(root / folder, ignore_errors=True)


def timed_round(config: Path, env: dict, *arguments: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "competition", "round", str(config), *arguments],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"round {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return seconds


def markers(root: Path) -> list[dict]:
    [round_dir] = sorted((root / ".competition" / "rounds").iterdir())[-1:]
    return [json.loads(p.read_text()) for p in (round_dir / "done").glob("*.json")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=30)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "round-results.md")
    parser.add_argument("--no-slurm", action="store_true")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="round-bench-"))
    env = {**os.environ, "EVALUATOR_CACHE": str(workspace / "cache")}
    names = team_folders(workspace / "teams", args.teams)
    rows, per_team = [], {}

    config = write_config(workspace, names, args.samples, slurm=False)
    # Warm the caches (reference statistics, memorisation index): computed once per machine, not per round.
    subprocess.run([sys.executable, "-m", "evaluator.cli", str(workspace / "teams" / names[0]), "--count",
                    str(args.samples), "-o", str(workspace / "warm-up")], capture_output=True, env=env, check=True)
    for jobs in (1, 2):
        fresh(workspace)
        seconds = timed_round(config, env, "--jobs", str(jobs))
        per_team[f"local, --jobs {jobs}"] = [m["seconds"]["evaluate"] for m in markers(workspace)]
        rows.append((f"round, {args.teams} teams, --jobs {jobs}", seconds))
        if jobs == 1:
            unchanged = timed_round(config, env)
            rows.append((f"second round, nothing changed (all {args.teams} skipped)", unchanged))
    if not args.no_slurm:
        from tests.competition.slurm.cluster import installed, one_node_slurm

        if os.geteuid() == 0 and installed():
            config = write_config(workspace, names, args.samples, slurm=True)
            with one_node_slurm(workspace / "slurm") as cluster:
                fresh(workspace)
                seconds = timed_round(config, {**env, **cluster["env"]}, "--backend", "slurm")
            per_team["one-node Slurm"] = [m["seconds"]["evaluate"] for m in markers(workspace)]
            rows.append((f"round, {args.teams} teams, one-node Slurm ({os.cpu_count()} CPUs, 1 CPU a task)",
                         seconds))
        else:
            rows.append(("round on one-node Slurm", float("nan")))

    machine = (f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
               f"{args.teams} teams, {args.samples} samples each, MNIST features (all metrics), CPU.")
    lines = [machine, "", "| what | wall time (s) |", "|---|---:|"]
    lines += [f"| {what} | {seconds:.1f} |" for what, seconds in rows]
    first = next(s for w, s in rows if "--jobs 1" in w)
    second = next(s for w, s in rows if "nothing changed" in w)
    lines += ["", f"Second round / first round: {second / first:.1%}."]
    lines += ["", "| per team (evaluate s) | mean | median | max |", "|---|---:|---:|---:|"]
    for label, values in per_team.items():
        lines.append(f"| {label} | {statistics.mean(values):.1f} | {statistics.median(values):.1f} | "
                     f"{max(values):.1f} |")
    slurm_rows = [s for w, s in rows if "Slurm" in w and not math.isnan(s)]
    local2 = next(s for w, s in rows if "--jobs 2" in w)
    if slurm_rows:
        overhead = (slurm_rows[0] - local2) / args.teams
        lines += ["", f"Slurm's overhead per task (one-node Slurm round minus the --jobs 2 round, at the same "
                      f"two tasks at a time, over {args.teams} tasks): {overhead:+.1f} s."]
    mean_task = statistics.mean(per_team["local, --jobs 1"])
    lines += ["", f"Projection from the measured mean of {mean_task:.1f} s a team (--jobs 1: one task on this "
                  f"machine's {os.cpu_count()} cores), for T teams on N nodes running c tasks each, assuming each "
                  f"task keeps {os.cpu_count()} cores (a node with c tasks has {os.cpu_count()}c cores):",
              "", "| teams T | nodes N | tasks a node c | projected round |", "|---:|---:|---:|---:|"]
    for teams, nodes, per_node in ((30, 1, 1), (30, 1, 8), (300, 1, 8), (300, 4, 8), (1000, 8, 8),
                                   (1000, 16, 16)):
        waves = math.ceil(teams / (nodes * per_node))
        lines.append(f"| {teams} | {nodes} | {per_node} | {waves * mean_task / 60:.1f} min |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
