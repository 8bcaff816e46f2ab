"""`competition.toml`: one file for a competition's settings, read by `evaluate --config`, the
leaderboard and rounds. Every setting is optional; a bad one is an error that names its line.

The minimal form:

    results_dir = "results"
    [[teams]]
    name = "team-a"
    source = "path/to/folder"      # or a git URL or path to a repository
    ref = "main"                   # optional, git only

Every setting, with its default, is documented in leaderboard/README.md ("competition.toml").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_METRICS = ["mnist.fid", "mnist.precision", "mnist.recall", "mnist.density", "mnist.coverage",
                   "class_coverage.digits_present", "class_coverage.tv_distance",
                   "memorisation.near_copy_fraction"]
RULE_VIOLATION_POLICIES = ("unranked", "disqualify")
SELECTIONS = ("best", "latest")
TEAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ConfigError(ValueError):
    """A setting that cannot be used, with the file and line it came from."""


@dataclass(frozen=True)
class Team:
    name: str
    source: str  # a local folder, or a git repository (URL or path)
    ref: str | None = None  # branch or tag, git only


@dataclass(frozen=True)
class LimitSettings:
    """[limits]: what each team's run may use (evaluate's --timeout, --memory, --batch-size, --count)."""

    timeout: float = 600.0
    memory: str = "8G"
    batch_size: int = 2048
    samples: int = 10_000


@dataclass(frozen=True)
class FetchSettings:
    """[fetch]: cloning or updating a team's git repository, outside the sandbox."""

    timeout: float = 300.0
    max_bytes: str = "2G"


@dataclass(frozen=True)
class RequirementSettings:
    """[requirements]: opt-in installation of the packages a team needs and the environment lacks."""

    install: bool = False
    timeout: float = 600.0
    index_url: str | None = None  # else pip's own configuration


@dataclass(frozen=True)
class SlurmSettings:
    """[slurm]: how `--backend slurm` submits its job array."""

    partition: str | None = None
    account: str | None = None
    time: str = "01:00:00"  # per task; Slurm kills a task past it (reported as such)
    mem: str = "16G"
    cpus_per_task: int = 2
    gres: str | None = None  # e.g. "gpu:1"
    max_parallel: int | None = None  # the array's %N throttle
    extra: tuple[str, ...] = ()  # further sbatch options, e.g. ["--qos=short"]
    python: str | None = None  # the interpreter on the nodes (default: the one running the round)
    poll: float = 10.0  # seconds between squeue polls


_TABLES: dict[str, tuple[type, dict[str, tuple[type, ...]]]] = {
    "limits": (LimitSettings, {"timeout": (int, float), "memory": (str, int), "batch_size": (int,),
                               "samples": (int,)}),
    "fetch": (FetchSettings, {"timeout": (int, float), "max_bytes": (str, int)}),
    "requirements": (RequirementSettings, {"install": (bool,), "timeout": (int, float), "index_url": (str,)}),
    "slurm": (SlurmSettings, {"partition": (str,), "account": (str,), "time": (str,), "mem": (str,),
                              "cpus_per_task": (int,), "gres": (str,), "max_parallel": (int,), "extra": (list,),
                              "python": (str,), "poll": (int, float)}),
}


@dataclass
class CompetitionConfig:
    title: str = "MNIST GAN competition"  # the competition's name, shown on every page
    results_dir: str = "results"
    rank_by: str | None = None  # None: inception.fid when every ranked result has it, else mnist.fid
    selection: str = "best"  # best | latest run of each team
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    decimals: dict[str, int] = field(default_factory=dict)
    default_decimals: int = 3
    deadline: datetime | None = None  # runs created after it are shown but not ranked
    baselines: list[str] = field(default_factory=list)  # names labelled as reference rows
    rule_violation: str = "unranked"  # unranked: shown with a badge, no rank | disqualify
    seed: int | str | None = None  # an integer, "secret" (drawn once, revealed later), None: 0
    features: list[str] = field(default_factory=lambda: ["mnist"])
    gpu: bool = False  # run teams with the GPU (evaluate --gpu)
    jobs: int = 1  # evaluations at once on this machine (round --jobs)
    quota: int | None = None  # new submissions evaluated per team per UTC day
    state_dir: str = ".competition"  # sources, round journals and the secret seed
    site_dir: str = "site"  # where a round writes the leaderboard
    limits: LimitSettings = field(default_factory=LimitSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    requirements: RequirementSettings = field(default_factory=RequirementSettings)
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    teams: list[Team] = field(default_factory=list)
    source: Path | None = None  # the file this was read from (relative paths resolve against it)

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {list(SELECTIONS)}, not {self.selection!r}")
        if self.rule_violation not in RULE_VIOLATION_POLICIES:
            raise ValueError(f"rule_violation must be one of {list(RULE_VIOLATION_POLICIES)}, "
                             f"not {self.rule_violation!r}")
        if self.rank_by is not None and self.rank_by not in self.metrics:
            self.metrics = [self.rank_by, *self.metrics]
        if isinstance(self.deadline, str):
            self.deadline = datetime.fromisoformat(self.deadline)
        if self.deadline is not None and self.deadline.tzinfo is None:
            self.deadline = self.deadline.replace(tzinfo=timezone.utc)

    def decimals_for(self, metric: str) -> int:
        return self.decimals.get(metric, self.default_decimals)

    def path(self, value: str) -> Path:
        """A path setting, relative to the config file's folder."""
        base = self.source.parent if self.source is not None else Path.cwd()
        return (base / value).resolve() if not Path(value).is_absolute() else Path(value)

    @classmethod
    def load(cls, path: str | Path | None) -> "CompetitionConfig":
        if path is None:
            return cls()
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ConfigError(f"{path}: cannot be read ({err.strerror})") from err
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        return _from_mapping(data, text, path)


# Types of the plain settings (teams are checked on their own).
_TYPES: dict[str, tuple[type, ...]] = {
    "title": (str,), "results_dir": (str,), "rank_by": (str,), "selection": (str,), "metrics": (list,),
    "decimals": (dict,), "default_decimals": (int,), "deadline": (datetime, str), "baselines": (list,),
    "rule_violation": (str,), "seed": (int, str), "features": (list,), "gpu": (bool,), "jobs": (int,),
    "quota": (int,), "state_dir": (str,), "site_dir": (str,),
}


_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table", datetime: "a date-time",
               bool: "a boolean", float: "a number"}


def _from_mapping(data: dict[str, Any], text: str, path: Path) -> CompetitionConfig:
    def fail(message: str, key: str, section: str | None = None, index: int | None = None):
        line = _line_of(text, key, section, index)
        where = f"{path}, line {line}" if line else str(path)
        raise ConfigError(f"{where}: {message}")

    known = {f.name for f in fields(CompetitionConfig)} - {"source"}
    for key in data:
        if key not in known:
            fail(f"unknown setting {key!r}; known: {sorted(known)}", key)
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key == "teams":
            continue
        if key in _TABLES:
            settings[key] = _table(key, value, fail)
            continue
        if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
            expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in _TYPES[key])
            fail(f"{key} must be {expected}, not {_TYPE_NAMES.get(type(value), type(value).__name__)} "
                 f"({value!r})", key)
        settings[key] = value
    for key in ("metrics", "baselines", "features"):
        if key in settings and not all(isinstance(item, str) for item in settings[key]):
            fail(f"{key} must be a list of strings", key)
    if isinstance(settings.get("seed"), str) and settings["seed"] != "secret":
        fail(f'seed must be an integer or "secret", not {settings["seed"]!r}', "seed")
    for key in ("jobs", "quota"):
        if key in settings and settings[key] < 1:
            fail(f"{key} must be at least 1", key)
    settings["teams"] = _teams(data.get("teams", []), fail)
    try:
        config = CompetitionConfig(**settings, source=path)
    except ValueError as err:
        key = next((k for k in ("selection", "rule_violation", "deadline") if k in str(err)), "")
        fail(str(err), key)
    return config


def _table(name: str, value: Any, fail):
    """One [table] of settings, each checked against its type."""
    cls, types = _TABLES[name]
    if not isinstance(value, dict):
        fail(f"{name} must be a table: [{name}]", name)
    for key, item in value.items():
        if key not in types:
            fail(f"unknown setting {key!r} in [{name}]; known: {sorted(types)}", key, name)
        if not isinstance(item, types[key]) or (isinstance(item, bool) and bool not in types[key]):
            expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types[key])
            fail(f"{name}.{key} must be {expected}, not {_TYPE_NAMES.get(type(item), type(item).__name__)} "
                 f"({item!r})", key, name)
        if isinstance(item, (int, float)) and not isinstance(item, bool) and item < 0:
            fail(f"{name}.{key} must not be negative", key, name)
    if name == "slurm" and "extra" in value:
        if not all(isinstance(option, str) for option in value["extra"]):
            fail("slurm.extra must be a list of strings", "extra", name)
        value = {**value, "extra": tuple(value["extra"])}
    if name == "limits" and "memory" in value:
        from evaluator.sandbox.limits import parse_size

        try:
            parse_size(value["memory"])
        except ValueError as err:
            fail(f"limits.memory: {err}", "memory", name)
    return cls(**value)


def _teams(entries: Any, fail) -> list[Team]:
    if not isinstance(entries, list):
        fail("teams must be an array of tables: [[teams]]", "teams")
    teams, seen = [], set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            fail("each [[teams]] entry must be a table", "teams")
        unknown = sorted(set(entry) - {"name", "source", "ref"})
        if unknown:
            fail(f"unknown team setting {unknown[0]!r}; known: name, source, ref", unknown[0], "teams", index)
        for key in ("name", "source"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                fail(f"team {index + 1} needs a {key} (a non-empty string)", key if key in entry else "name",
                     "teams", index)
        if not TEAM_NAME.fullmatch(entry["name"]):
            fail(f"team name {entry['name']!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                 f"letter or digit", "name", "teams", index)
        if entry["name"] in seen:
            fail(f"team name {entry['name']!r} appears twice", "name", "teams", index)
        if "ref" in entry and (not isinstance(entry["ref"], str) or not entry["ref"].strip()):
            fail("ref must be a branch or tag name", "ref", "teams", index)
        # Values that git could read as options are refused here; sources.py checks the rest.
        for key in ("source", "ref"):
            if isinstance(entry.get(key), str) and (entry[key].startswith("-") or
                                                     any(ord(c) < 0x20 or ord(c) == 0x7f for c in entry[key])):
                fail(f"{key} {entry[key][:80]!r} may not begin with '-' or hold control characters",
                     key, "teams", index)
        seen.add(entry["name"])
        teams.append(Team(entry["name"], entry["source"], entry.get("ref")))
    return teams


def _line_of(text: str, key: str, section: str | None = None, index: int | None = None) -> int | None:
    """The line where `key` is set: at the top level, in [section], or in the index-th [[section]]."""
    current: tuple[str, int | None] | None = None
    arrays: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        array = re.match(r"\[\[\s*([^\]]+?)\s*\]\]", stripped)
        table = re.match(r"\[\s*([^\]]+?)\s*\]", stripped)
        if array:
            arrays[array[1]] = arrays.get(array[1], -1) + 1
            current = (array[1], arrays[array[1]])
            if key == array[1] and section is None:
                return number
            continue
        if table:
            current = (table[1], None)
            continue
        assignment = re.match(r"(['\"]?)([^'\"=\s]+)\1\s*=", stripped)
        if not assignment or assignment[2] != key:
            continue
        if section is None and current is None:
            return number
        if current is not None and current[0] == section and (index is None or current[1] == index):
            return number
    return None
