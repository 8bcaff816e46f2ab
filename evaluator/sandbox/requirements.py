"""Compare a team's requirements.txt with the evaluation environment. Installs nothing.

Bounded: at most MAX_LINES lines and MAX_BYTES bytes are read (a 100,000-line file once took 73 s
and made a 23 MB result); what was not read is reported as one `cut` entry. Severity separates what
may break the run (`warning`: a package the environment lacks) from what is only worth knowing
(`info`: a pin that differs from the installed version, a line that is not a requirement).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

# torch, and the packages that belong to torch's own build (its CUDA runtime wheels, triton): the
# environment's torch decides which of them it uses, so a team's pins of them can never help. A
# frozen requirements file once asked for twelve nvidia-*-cu12 wheels (2.8 GB, about 100 s).
PROTECTED = frozenset({"torch", "torchvision", "numpy"})
TORCH_BUILD = frozenset({"triton", "pytorch-triton", "pytorch-triton-rocm", "pytorch-triton-xpu"})
TORCH_BUILD_PREFIXES = ("nvidia-", "cuda-")


def never_installed(name: str) -> bool:
    """torch, torchvision, numpy and the packages of torch's own build are never installed."""
    name = canonicalize_name(name)
    return name in PROTECTED or name in TORCH_BUILD or name.startswith(TORCH_BUILD_PREFIXES)


MAX_LINES = 500
MAX_BYTES = 64 * 1024
MAX_TEXT = 120


@lru_cache(maxsize=4096)
def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def check_requirements(path: Path) -> list[dict]:
    """Entries {'package', 'problem', 'severity', 'detail'}; problems: missing, conflict (a pin that
    differs), torch_build (a package of torch's own build, never installed), unparsed, missing_file,
    cut."""
    if not path.is_file():
        return [{"package": "", "problem": "missing_file", "severity": "info", "detail": "no requirements.txt"}]
    with open(path, "rb") as handle:
        raw = handle.read(MAX_BYTES + 1)
    text = raw[:MAX_BYTES].decode("utf-8", errors="replace")
    lines = text.splitlines()
    entries = []
    cut_lines = len(lines) > MAX_LINES or len(raw) > MAX_BYTES
    for number, raw_line in enumerate(lines[:MAX_LINES], 1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):  # options such as --extra-index-url, -r, -e
            entries.append({"package": "", "problem": "unparsed", "severity": "info",
                            "detail": f"line {number}: pip option {_clip(line.split()[0])!r} ignored"})
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            entries.append({"package": "", "problem": "unparsed", "severity": "info",
                            "detail": f"line {number}: not a requirement: {_clip(line)!r}"})
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        installed = installed_version(name)
        if installed is None and never_installed(name):
            entries.append({"package": _clip(requirement.name), "problem": "torch_build", "severity": "info",
                            "detail": f"{_clip(line)} belongs to torch's own build: never installed, the "
                                      f"environment's torch is used"})
        elif installed is None:
            entry = {"package": _clip(requirement.name), "problem": "missing", "severity": "warning",
                     "detail": f"{_clip(line)} is not installed in the evaluation environment"}
            if requirement.url is None:  # what an opt-in install may ask pip for (never a direct URL)
                entry["requirement"] = _clip(str(requirement))
            entries.append(entry)
        elif requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            entries.append({"package": _clip(requirement.name), "problem": "conflict", "severity": "info",
                            "detail": f"{_clip(line)} requested, {installed} installed"})
    if cut_lines:
        entries.append({"package": "", "problem": "cut", "severity": "info",
                        "detail": f"only the first {min(len(lines), MAX_LINES)} lines and {MAX_BYTES} bytes "
                                  f"were checked"})
    return entries


def summarise(entries: list[dict], installed: dict | None = None) -> tuple[str, str] | None:
    """(severity, one line) grouping the entries, or None when there is nothing to say; `installed`
    is the result's `requirements_installed` (what an opt-in install added, None when nothing)."""
    groups: dict[str, list[dict]] = {}
    for entry in entries:
        groups.setdefault(entry.get("problem", ""), []).append(entry)

    def names(items: list[dict], key: str = "package", shown: int = 5) -> str:
        values = [str(i.get(key) or i.get("detail", ""))[:60] for i in items]
        more = f", +{len(values) - shown} more" if len(values) > shown else ""
        return ", ".join(values[:shown]) + more

    parts = []
    if groups.get("missing"):
        parts.append(f"{len(groups['missing'])} missing from the environment ({names(groups['missing'])})")
    if groups.get("conflict"):
        pins = [{"package": e["detail"].replace(" requested,", ":")} for e in groups["conflict"]]
        parts.append(f"{len(pins)} pin(s) differ from the installed version ({names(pins)})")
    if groups.get("torch_build"):
        parts.append(f"{len(groups['torch_build'])} package(s) of torch's own build never installed "
                     f"({names(groups['torch_build'])})")
    if groups.get("unparsed"):
        parts.append(f"{len(groups['unparsed'])} line(s) ignored")
    if groups.get("cut"):
        parts.append(groups["cut"][0]["detail"])
    installed = installed if isinstance(installed, dict) else None  # results of older versions held a name
    if not parts and not installed:
        return None
    if installed:
        packages = [{"package": f"{p['name']} {p['version']}"} for p in installed.get("packages", [])]
        size = installed.get("bytes", 0)
        parts.append(f"installed {len(packages)} package(s), {_megabytes(size)} ({names(packages)})"
                     if packages else "nothing needed installing")
        severity = "info"
    else:
        severity = "warning" if groups.get("missing") else "info"
        if groups.get("missing"):
            parts[0] += " (not installed: installation is off)"
    return severity, "requirements.txt: " + "; ".join(parts)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} kB"
