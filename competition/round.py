"""A competition round: fetch every team, skip what is already evaluated, evaluate the rest (here
or on Slurm), rebuild the leaderboard. Resumable from its journal at any point.

State lives in `state_dir` (from competition.toml, default `.competition/` beside it):

    sources/<team>/            git checkouts (never inside results_dir: the leaderboard reads that)
    seed                       the secret seed, when `seed = "secret"` (mode 0600)
    rounds/<round-id>/         one folder per round:
        journal.jsonl          every event (journal.py)
        settings.json          the evaluation settings (and the seed's commitment, never the seed)
        plan.json              per team: folder, commit, submission hash, evaluation key
        done/<team>.json       written by the task that evaluated the team (local or on a node)
        logs/<team>.log        the task's own output
        slurm/                 array scripts and Slurm's output files
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from competition.config import CompetitionConfig
from competition.journal import Journal, RoundState
from competition.sources import FetchError, fetch
from competition.standing import standing
from evaluator import __version__ as EVALUATOR_VERSION
from evaluator import results as result_files

FINAL_STATES = ("done", "skipped", "failed")  # a resumed round runs only what is pending or was running
RETRYABLE_VERDICTS = ("SANDBOX_ERROR",)  # the environment failed: a result with such a verdict is not kept


class RoundError(Exception):
    """The round cannot go on (another round holds the lock, the config changed, ...)."""


@dataclass(frozen=True)
class Settings:
    """Everything that changes an evaluation's result: part of every evaluation key."""

    evaluator: str
    features: tuple[str, ...]
    samples: int
    timeout: float
    memory: str
    batch_size: int
    gpu: bool
    seed_commitment: str  # sha256 of the seed: the key changes with the seed, the seed stays secret
    k: int = 3
    install_requirements: bool = False
    final: bool = False  # a final round's evaluations are its own (the final table reads only those)

    def key(self, submission_sha256: str) -> str:
        payload = json.dumps({"submission": submission_sha256, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def commitment(seed: int) -> str:
    return hashlib.sha256(f"mnist-gan-seed:{seed}".encode()).hexdigest()


def round_seed(config: CompetitionConfig, new_seed: bool = False) -> int:
    """The seed: the config's integer, or the competition's secret one (drawn on first use)."""
    if isinstance(config.seed, int):
        return config.seed
    if config.seed != "secret":
        return 0
    path = config.path(config.state_dir) / "seed"
    if new_seed or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.randbelow(2**31)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{value}\n")
        os.replace(path.with_suffix(".tmp"), path)
        return value
    return int(path.read_text().strip())


def settings_for(config: CompetitionConfig, seed: int, final: bool = False) -> Settings:
    return Settings(EVALUATOR_VERSION, tuple(config.features), config.limits.samples, float(config.limits.timeout),
                    str(config.limits.memory), config.limits.batch_size, config.gpu, commitment(seed),
                    install_requirements=config.requirements.install, final=final)


def existing_results(results_dir: Path, team: str) -> list[tuple[Path, dict]]:
    """The team's result.json files (complete ones only), oldest first."""
    found = []
    for path in sorted((results_dir / team).glob("*/result.json")):
        if path.parent.name.startswith("."):
            continue
        try:
            found.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return found


class Round:
    """One round of a competition: `open()` starts a new one or resumes the unfinished one."""

    def __init__(self, config: CompetitionConfig, new_seed: bool = False) -> None:
        self.config = config
        self.state_dir = config.path(config.state_dir)
        self.results_dir = config.path(config.results_dir)
        self.rounds_dir = self.state_dir / "rounds"
        self.new_seed = new_seed
        self._lock = FileLock(str(self.state_dir / "round.lock"))
        self.observed = Journal(self.state_dir / "observed.jsonl")
        self.round_dir: Path | None = None
        self.journal: Journal | None = None
        self.seed: int | None = None
        self.settings: Settings | None = None
        self.final = False  # started after the deadline: each team's last submission before it

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> bool:
        """Take the competition's lock and open a round; True when an unfinished one is resumed."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RoundError(f"another `competition round` holds {self._lock.lock_file}; wait for it, "
                             f"or stop it (its journal lets this round resume)") from None
        latest = latest_round(self.rounds_dir)
        resumed = latest is not None and not RoundState.replay(latest.name, Journal(latest / "journal.jsonl")
                                                             .events()).finished
        self.round_dir = latest if resumed else self.rounds_dir / _new_round_id(self.rounds_dir)
        self.journal = Journal(self.round_dir / "journal.jsonl")
        self.seed = round_seed(self.config, self.new_seed and not resumed)
        if resumed:
            self.final = json.loads((self.round_dir / "round.json").read_text()).get("final", False)
        else:
            self.final = self.config.deadline is not None and datetime.now(timezone.utc) > self.config.deadline
        self.settings = settings_for(self.config, self.seed, self.final)
        for folder in ("done", "logs", "slurm"):
            (self.round_dir / folder).mkdir(parents=True, exist_ok=True)
        if resumed:
            recorded = json.loads((self.round_dir / "settings.json").read_text())
            if recorded != asdict(self.settings) | {"features": list(self.settings.features)}:
                raise RoundError(f"the evaluation settings changed since round {self.round_dir.name} started "
                                 f"(competition.toml or the evaluator); finish it with the old settings, "
                                 f"or remove {self.round_dir} to start afresh")
            self.journal.append("round_resumed", pid=os.getpid())
        else:
            if self.config.source is None:
                raise RoundError("a round needs its competition.toml on disk")
            result_files.write_json(self.round_dir / "round.json", {"config": str(self.config.source.resolve()),
                                                                    "final": self.final})
            result_files.write_json(self.round_dir / "settings.json",
                                    asdict(self.settings) | {"features": list(self.settings.features)})
            self.journal.append("round_started", pid=os.getpid(), teams=[t.name for t in self.config.teams],
                                final=self.final,
                                seed_commitment=self.settings.seed_commitment,
                                seed=None if self.config.seed == "secret" else self.seed)
        return resumed

    def close(self) -> None:
        if self._lock.is_locked:
            self._lock.release()

    def state(self) -> RoundState:
        return RoundState.replay(self.round_dir.name, self.journal.events())

    # -- planning -------------------------------------------------------------------------------

    def plan(self, force: set[str] = frozenset(), progress=None) -> list[str]:
        """Fetch every team not yet planned in this round, then return the teams to evaluate.

        A team is skipped when a result with the same evaluation key exists (its code and every
        setting unchanged), unless forced; or when it used its quota of evaluations today.
        """
        unknown = sorted(force - {t.name for t in self.config.teams})
        if unknown:
            raise RoundError(f"--force names teams that are not in the roster: {', '.join(unknown)}")
        plan = self.load_plan()
        cache = self.state_dir / "sources"
        for team in self.config.teams:
            if team.name in plan:
                continue
            try:
                observed = self.observation_for(team) if self.final else None
                fetched = fetch(team, self.config, cache, observed)
            except FetchError as err:
                self.journal.append("fetch_failed", team=team.name, verdict="FETCH_FAILED", reason=str(err))
                if progress:
                    progress(team.name, "FETCH_FAILED", str(err))
                continue
            if not self.final:  # the harness's own record of what it saw, and when: never a commit date
                observed = self.observed.append("observed", team=team.name, source=team.source, ref=team.ref,
                                                kind=fetched.kind, commit=fetched.commit, sha256=fetched.sha256,
                                                commit_date=fetched.commit_date, round=self.round_dir.name)
            key = self.settings.key(fetched.sha256)
            plan[team.name] = {"folder": str(fetched.folder), "kind": fetched.kind, "commit": fetched.commit,
                               "sha256": fetched.sha256, "key": key, "source": team.source, "ref": team.ref,
                               "commit_date": fetched.commit_date, "observed_at": observed["time"]}
            result_files.write_json(self.round_dir / "plan.json", plan)
            self.journal.append("planned", team=team.name, commit=fetched.commit, key=key,
                                seconds=fetched.seconds, kind=fetched.kind)
            if progress:
                progress(team.name, "fetched", fetched.commit or fetched.kind)
        pending = []
        state = self.state()
        for name, entry in plan.items():
            team_state = state.teams.get(name)
            if team_state is not None and team_state.state in FINAL_STATES and name not in force:
                continue
            reason = None if name in force else self.skip_reason(name, entry["key"])
            if reason is not None:
                kind, path = reason
                self.journal.append("skipped", team=name, verdict="SKIPPED", reason=kind, result=path,
                                    **outcome_of(path, self.config.rule_violation))
                if progress:
                    progress(name, "SKIPPED", kind)
                continue
            pending.append(name)
        return pending

    def observation_for(self, team) -> dict:
        """The last submission of `team` that a round fetched at or before the deadline (a final
        round's choice: what the harness saw in time, whatever dates the commits claim)."""
        deadline = self.config.deadline
        seen = [record for record in self.observed.events()
                if record.get("event") == "observed" and record.get("team") == team.name
                and record.get("source") == team.source and record.get("ref") == team.ref
                and datetime.fromisoformat(record["time"]) <= deadline]
        if not seen:
            raise FetchError(f"no submission of this team was fetched at or before the deadline "
                             f"({deadline.isoformat()}): the final round evaluates only what a round saw in time")
        return seen[-1]

    def skip_reason(self, team: str, key: str) -> tuple[str, str | None] | None:
        """Why the team need not run: an evaluation with this key exists, or the day's quota is used."""
        today = datetime.now(timezone.utc).date()
        used = 0
        for path, result in existing_results(self.results_dir, team):
            round_info = result.get("round") or {}
            if result.get("verdict") in RETRYABLE_VERDICTS:
                continue
            if round_info.get("key") == key:
                return "unchanged: already evaluated with these settings", str(path)
            created = result.get("created", "")
            if round_info and created[:10] == today.isoformat():
                used += 1
        if self.config.quota is not None and not self.final and used >= self.config.quota:
            return f"quota: {used} evaluation(s) today, the limit is {self.config.quota}", None
        return None

    def load_plan(self) -> dict:
        path = self.round_dir / "plan.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # -- the end --------------------------------------------------------------------------------

    def finish(self, site_dir: Path | None = None) -> Path | None:
        """Rebuild the leaderboard from every result, then close the round in the journal."""
        from leaderboard.build import build_site

        index = None
        if self.results_dir.exists():
            index = build_site([self.results_dir], site_dir or self.config.path(self.config.site_dir), self.config)
        state = self.state()
        self.journal.append("round_finished", counts=state.counts(),
                            seed=self.seed if self.config.seed == "secret" else None)
        return index


def result_outcome(result: dict, policy: str) -> dict:
    """What an evaluation found, for the round's records and tables: its standing under `policy`,
    its flags, its verdict and the round (or run) that made it."""
    return {"standing": standing(result, policy).value,
            "flags": [flag.get("code") for flag in result.get("flags", [])],
            "previous_verdict": result.get("verdict"),
            "evaluated_in": (result.get("round") or {}).get("id") or result.get("run_id")}


def outcome_of(path: str | Path | None, policy: str) -> dict:
    """`result_outcome` of a result.json on disk ({} when there is none to read)."""
    if path is None:
        return {}
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return result_outcome(result, policy)


def latest_round(rounds_dir: Path) -> Path | None:
    rounds = sorted(p for p in rounds_dir.glob("*") if (p / "journal.jsonl").exists()) if rounds_dir.exists() else []
    return rounds[-1] if rounds else None


def _new_round_id(rounds_dir: Path) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    candidate, n = stamp, 1
    while (rounds_dir / candidate).exists():
        n += 1
        candidate = f"{stamp}-{n}"
    return candidate


def python_command() -> list[str]:
    """How a task is started: this interpreter, this package."""
    return [sys.executable, "-m", "competition"]
