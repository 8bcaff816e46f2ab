"""Opt-in installation of the packages a team's requirements.txt asks for and the environment lacks.

Outside the sandbox, before the run: pip first resolves against the evaluation environment (a dry
run, constrained to every installed version, binary wheels only, so no package's setup code ever
runs), then installs exactly the missing distributions, without their dependencies, into a folder
keyed by what was asked. That folder is bound read-only into the sandbox and appended to the end
of `sys.path` by the bootstrap, so it can add packages but never replace one of the environment's.
torch, torchvision, numpy and the packages of torch's own build (CUDA runtime wheels, triton) are
never installed, not even as another package's dependency: a team that pins them gets the
environment's (the requirements check reports the pin as information).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from filelock import FileLock
from packaging.utils import canonicalize_name

from evaluator.sandbox.requirements import PROTECTED, never_installed
from evaluator.sandbox.staging import remove_tree


class InstallFailed(Exception):
    """pip could not provide what the team asked for (the message says what, in one line)."""


@dataclass
class RequirementInstaller:
    cache_dir: Path
    timeout_s: float = 600.0
    index_url: str | None = None

    def __call__(self, requirements: list[dict]) -> Path | None:
        """The folder holding the missing packages (None when nothing is missing); raises InstallFailed."""
        wanted = sorted({entry["requirement"] for entry in requirements if entry.get("problem") == "missing"
                         and entry.get("requirement")
                         and not never_installed(entry.get("package", ""))})
        if not wanted:
            return None
        key = hashlib.sha256(json.dumps([wanted, sys.version, platform.machine()]).encode()).hexdigest()[:24]
        site = Path(self.cache_dir) / key
        site.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(site) + ".lock"):
            if (site / ".complete").exists():
                return site
            self._install(wanted, site)
        return site

    def _pip(self, arguments: list[str]) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pip", *arguments, "--only-binary", ":all:", "--no-input",
                   "--disable-pip-version-check"]
        if self.index_url:
            command += ["--index-url", self.index_url]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=self.timeout_s,
                                  env={**os.environ, "PIP_NO_CACHE_DIR": "0"})
        except subprocess.TimeoutExpired:
            raise InstallFailed(f"pip took longer than {self.timeout_s:g} s") from None

    def _install(self, wanted: list[str], site: Path) -> None:
        with tempfile.TemporaryDirectory(prefix=".requirements-", dir=site.parent) as scratch:
            constraints = Path(scratch) / "environment.txt"
            constraints.write_text("".join(f"{d.metadata['Name']}=={d.version}\n" for d in metadata.distributions()
                                           if d.metadata["Name"]))
            report = Path(scratch) / "report.json"
            resolved = self._pip(["install", "--dry-run", "--quiet", "--report", str(report),
                                  "--constraint", str(constraints), *wanted])
            if resolved.returncode != 0:
                raise InstallFailed(f"pip cannot install {', '.join(wanted)} beside the evaluation environment "
                                    f"(binary wheels only): {_last_error(resolved)}")
            plan = [(item["metadata"]["name"], item["metadata"]["version"])
                    for item in json.loads(report.read_text()).get("install", [])]
            protected = [name for name, _ in plan if canonicalize_name(name) in PROTECTED]
            if protected:
                raise InstallFailed(f"the requirements would replace {', '.join(protected)}, which are never "
                                    f"installed")
            skipped = [name for name, _ in plan if never_installed(name)]
            plan = [(name, version) for name, version in plan if not never_installed(name)]
            target = Path(scratch) / "site"
            if plan:
                done = self._pip(["install", "--quiet", "--no-deps", "--target", str(target),
                                  *(f"{name}=={version}" for name, version in plan)])
                if done.returncode != 0:
                    raise InstallFailed(f"pip failed to install {', '.join(n for n, _ in plan)}: "
                                        f"{_last_error(done)}")
            target.mkdir(exist_ok=True)
            record = {"asked": wanted, "installed": plan, "skipped": skipped, "bytes": _tree_bytes(target)}
            (target / ".complete").write_text(json.dumps(record) + "\n")
            if site.exists():
                remove_tree(site)
            os.replace(target, site)
            os.chmod(site, 0o755)


def installed_record(site: Path | None) -> dict | None:
    """What an install folder holds, for the result: packages with versions, size, and what was left out."""
    if site is None:
        return None
    try:
        record = json.loads((site / ".complete").read_text())
    except (OSError, ValueError):
        record = {}
    return {"folder": site.name, "packages": [{"name": n, "version": v} for n, v in record.get("installed", [])],
            "bytes": int(record.get("bytes") or _tree_bytes(site)), "skipped": record.get("skipped", [])}


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file() and not f.is_symlink())


def _last_error(done: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines()
             if line.strip() and not line.startswith("WARNING: Location")]
    return next((line for line in reversed(lines) if "ERROR" in line), lines[-1] if lines else "")[:300]
