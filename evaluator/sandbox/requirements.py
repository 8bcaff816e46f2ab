"""Compare a team's requirements.txt with the evaluation environment. Installs nothing."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement


def check_requirements(path: Path) -> list[dict]:
    """Warnings: {'package', 'problem': missing|conflict|unparsed, 'detail'} per line."""
    if not path.is_file():
        return [{"package": "", "problem": "missing_file", "detail": "no requirements.txt"}]
    warnings = []
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):  # options such as --extra-index-url, -r, -e
            warnings.append({"package": "", "problem": "unparsed",
                             "detail": f"line {number}: pip option {line.split()[0]!r} ignored"})
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            warnings.append({"package": "", "problem": "unparsed", "detail": f"line {number}: {err}"})
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            warnings.append({"package": requirement.name, "problem": "missing",
                             "detail": f"{line} is not installed in the evaluation environment"})
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            warnings.append({"package": requirement.name, "problem": "conflict",
                             "detail": f"{line} requested, {installed} installed"})
    return warnings
