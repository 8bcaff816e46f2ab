"""Run the team's script in a workspace under bubblewrap, with limits, a hard timeout and evidence.

Layout inside the sandbox: the system (/usr, /bin, /lib*, /etc) read-only; a private size-capped
/tmp; then the evaluation Python read-only (bound after /tmp, so a virtual environment under /tmp
stays visible); the bootstrap read-only at /evaluator/bootstrap.py; the team's throwaway copy
writable at /submission and the trace folder at /evaluator/trace (both capped tmpfs as root); fresh
/proc and /dev; no network; a cleared environment; the run's own uid; a seccomp filter; no new user
namespaces. Nothing else of the host is visible: not MNIST, not the reference statistics, not other
submissions, results or home folders.

Evidence is kept apart from what the team prints. bubblewrap reports on its own status descriptor
and writes its errors to a stderr of its own; the bootstrap writes one status line and closes the
pipe before the team's code starts, and only then joins stderr to the log. A sandbox failure is
therefore read from channels the team's code never holds.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from evaluator.sandbox import seccomp
from evaluator.sandbox.cgroups import Cgroup
from evaluator.sandbox.limits import Limits
from evaluator.sandbox.workspace import Workspace

LOG_TAIL_BYTES = 64 * 1024
SETUP_LOG_BYTES = 8 * 1024
INSIDE = "/submission"
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
BOOTSTRAP_INSIDE = "/evaluator/bootstrap.py"
TRACE_INSIDE = "/evaluator/trace"
SITE_INSIDE = "/evaluator/site"  # the opt-in overlay of installed requirements (install.py)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
ENV_ALLOWLIST = {"LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                 "PYTHONHASHSEED": "0", "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "sandbox",
                 "LOGNAME": "sandbox", "MPLCONFIGDIR": "/tmp", "TORCH_HOME": "/tmp/torch",
                 "XDG_CACHE_HOME": "/tmp/.cache", "OMP_NUM_THREADS": str(min(os.cpu_count() or 1, 8))}


class SandboxUnavailable(Exception):
    """bubblewrap is missing (and --no-sandbox was not given)."""


def bubblewrap() -> str | None:
    return shutil.which("bwrap")


INSTALL_HINT = ("bubblewrap is required to run team code safely: install it with "
                "`apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap`; "
                "or pass --no-sandbox to run team code directly (UNSAFE: only for your own code)")


@dataclass
class RunOutcome:
    exit_code: int | None
    signal: int | None
    timed_out: bool
    oom_killed: bool
    wall_time_s: float
    log_tail: str
    log_bytes: int
    limits_in_force: dict = field(default_factory=dict)
    setup_error: str | None = None  # the sandbox or Python failed before any team code ran
    leftover_processes: int = 0
    started: dict | None = None  # the bootstrap's status line: team code ran after it


class _Reader(threading.Thread):
    """Drain a pipe, keeping only the last `keep` bytes (and counting all of them)."""

    def __init__(self, stream, keep: int) -> None:
        super().__init__(daemon=True)
        self.stream, self.keep = stream, keep
        self.chunks: deque[bytes] = deque()
        self.kept = self.total = 0

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.total += len(chunk)
            self.chunks.append(chunk)
            self.kept += len(chunk)
            while self.kept - len(self.chunks[0]) >= self.keep:
                self.kept -= len(self.chunks.popleft())

    def text(self) -> str:
        return b"".join(self.chunks)[-self.keep:].decode("utf-8", errors="replace")


def _python_roots() -> list[str]:
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
             os.path.realpath(sys.exec_prefix)}
    return sorted(r for r in roots if not any(r.startswith(d + "/") for d in SYSTEM_DIRS))


@lru_cache(maxsize=1)
def _bubblewrap_options() -> frozenset[str]:
    """The options this bubblewrap knows (--disable-userns needs 0.8)."""
    done = subprocess.run([bubblewrap() or "bwrap", "--help"], capture_output=True, text=True)
    return frozenset(word for word in (done.stdout + done.stderr).split() if word.startswith("--"))


def build_command(space: Workspace, inner: list[str], limits: Limits, gpu: bool, env: dict[str, str],
                  status_fd: int, seccomp_fd: int | None, site_packages: Path | None = None) -> list[str]:
    """The bubblewrap command line around `inner` (the bootstrap's command)."""
    privileged = space.uid is not None
    command = [bubblewrap() or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
               "--hostname", "sandbox", "--json-status-fd", str(status_fd)]
    if not privileged and "--disable-userns" in _bubblewrap_options():
        # Unprivileged bubblewrap works in a user namespace of its own; forbid nesting another.
        command += ["--unshare-user", "--disable-userns"]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    for directory in SYSTEM_DIRS:
        if os.path.isdir(directory):
            command += ["--ro-bind", directory, directory]
    command += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
    for root in _python_roots():  # after /tmp: a virtual environment may live under it
        # bwrap would copy the host parents' modes (/root is 0700): make them traversable.
        for parent in reversed(Path(root).parents[:-1]):
            if str(parent) != "/tmp":
                command += ["--perms", "0755", "--dir", str(parent)]
        if os.stat(root).st_mode & 0o005 == 0o005:
            command += ["--ro-bind", root, root]
        else:  # a root others cannot enter (`mktemp -d` makes 0700): a traversable one, its entries bound in
            command += ["--perms", "0755", "--dir", root]
            for entry in sorted(os.listdir(root)):
                command += ["--ro-bind", os.path.join(root, entry), os.path.join(root, entry)]
    command += ["--perms", "0755", "--dir", os.path.dirname(BOOTSTRAP_INSIDE),
                "--ro-bind", str(BOOTSTRAP), BOOTSTRAP_INSIDE,
                "--bind", str(space.submission), INSIDE,
                "--bind", str(space.trace), TRACE_INSIDE,
                "--chdir", INSIDE, "--clearenv"]
    if site_packages is not None:
        command += ["--ro-bind", str(site_packages), SITE_INSIDE]
    if gpu:
        for device in (*sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*")), *NVIDIA_DEVICES):
            if os.path.exists(device):
                command += ["--dev-bind", device, device]
    path_dirs = [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]
    for key, value in {**ENV_ALLOWLIST, "PATH": ":".join(path_dirs), **env}.items():
        command += ["--setenv", key, value]
    if privileged:
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    shutil.which("setpriv") or "/usr/bin/setpriv",
                    f"--reuid={space.uid}", f"--regid={space.uid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return [*command, "--", *inner]


def bootstrap_command(script: list[str], status_fd: int, trace_dir: str, bootstrap: str, seed: int,
                      generator_shapes: list[list[int]], trace: bool, site: str | None = None) -> list[str]:
    command = [sys.executable, "-s", bootstrap, "--status-fd", str(status_fd), "--trace-dir", trace_dir,
               "--seed", str(seed), "--generator-shapes", json.dumps(generator_shapes)]
    command += ["--site", site] if site else []
    return [*command, *(["--no-trace"] if not trace else []), "--", *script]


def run_sandboxed(space: Workspace, script: list[str], limits: Limits, *, gpu: bool = False,
                  sandbox: bool = True, env: dict[str, str] | None = None, seed: int = 0,
                  generator_shapes: list[list[int]] | None = None, trace: bool = True,
                  site_packages: Path | None = None) -> RunOutcome:
    """Run `python script...` (through the bootstrap) in the workspace's copy of the submission."""
    env = env or {}
    in_force: dict = {"timeout_s": limits.timeout_s, "sandbox": "bubblewrap" if sandbox else "none"}
    if sandbox and not bubblewrap():
        raise SandboxUnavailable(INSTALL_HINT)
    privileged = space.uid is not None
    in_force["samples"] = (f"tmpfs {limits.samples_max_bytes} bytes, {limits.samples_max_files} files "
                           f"beyond the copy" if space.submission in space.tmpfs
                           else "plain folder (count checked after the run)")
    in_force["samples_tmpfs"] = space.submission in space.tmpfs
    cgroup = Cgroup(f"mnist-eval-{uuid.uuid4().hex[:12]}", limits.memory_bytes, limits.pids) \
        if Cgroup.available() else None
    if cgroup is not None:
        try:
            cgroup.create()
            in_force["memory"] = f"cgroup {'v2' if cgroup.v2 else 'v1'} {limits.memory_bytes} bytes"
            in_force["pids"] = f"cgroup {limits.pids}"
        except OSError:
            cgroup.remove()
            cgroup = None
    use_rlimit_as = cgroup is None and not gpu  # RLIMIT_AS breaks CUDA's address reservations
    if cgroup is None:
        in_force["memory"] = f"RLIMIT_AS {limits.memory_bytes} bytes" if use_rlimit_as else "none"
        in_force["pids"] = f"RLIMIT_NPROC {limits.pids}" if privileged else "none"
    in_force["uid"] = space.uid if privileged else os.geteuid()
    in_force["max_file_bytes"] = limits.max_file_bytes

    def prepare_child() -> None:  # runs in the child between fork and exec
        if cgroup is not None:
            cgroup.enter()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        if privileged:  # counts the run's own uid's processes, so only meaningful after the switch
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids, limits.pids))
        if use_rlimit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

    shapes = generator_shapes or []
    status_read, status_write = os.pipe()
    bwrap_read, bwrap_write = os.pipe() if sandbox else (None, None)
    seccomp_fd = seccomp.program_fd() if sandbox else None
    in_force["seccomp"] = "denylist (docs/security.md)" if seccomp_fd is not None else "none"
    in_force["user_namespaces"] = "denied" if seccomp_fd is not None else "allowed"
    if sandbox:
        inner = bootstrap_command(script, status_write, TRACE_INSIDE, BOOTSTRAP_INSIDE, seed, shapes, trace,
                                  SITE_INSIDE if site_packages is not None else None)
        command = build_command(space, inner, limits, gpu, env, bwrap_write, seccomp_fd, site_packages)
        cwd, child_env = None, {}
    else:
        command = bootstrap_command(script, status_write, str(space.trace), str(BOOTSTRAP), seed, shapes,
                                    trace, str(site_packages) if site_packages is not None else None)
        cwd = str(space.submission)
        child_env = {**ENV_ALLOWLIST, "PATH": os.environ.get("PATH", ""), **env}
    passed = tuple(fd for fd in (status_write, bwrap_write, seccomp_fd) if fd is not None)
    started = time.monotonic()
    timed_out = False
    try:
        process = subprocess.Popen(command, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=passed,
                                   preexec_fn=prepare_child, start_new_session=True)
    except OSError as err:
        for fd in (*passed, status_read, bwrap_read):
            if fd is not None:
                os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        return RunOutcome(None, None, False, False, 0.0, "", 0, in_force, f"cannot start: {err}")
    finally:
        for fd in passed:
            try:
                os.close(fd)
            except OSError:
                pass
    log = _Reader(process.stdout, LOG_TAIL_BYTES)
    setup_log = _Reader(process.stderr, SETUP_LOG_BYTES)
    status = _Reader(os.fdopen(status_read, "rb"), SETUP_LOG_BYTES)
    bwrap_status = _Reader(os.fdopen(bwrap_read, "rb"), SETUP_LOG_BYTES) if bwrap_read is not None else None
    readers = [r for r in (log, setup_log, status, bwrap_status) if r is not None]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process)
        leftovers = 0
        if cgroup is not None:
            leftovers = 0 if cgroup.kill_all() else len(cgroup.processes())
        process.wait()
        for reader in readers:
            reader.join(timeout=5)
    wall = time.monotonic() - started
    code = process.returncode
    oom = cgroup.oom_killed() if cgroup is not None else False
    if cgroup is not None:
        peak = cgroup.peak_memory()
        if peak is not None:
            in_force["peak_memory_bytes"] = peak
        cgroup.remove()
    records = _json_lines(status.text())
    ready = next((r for r in records if r.get("team_code")), None)
    setup_error = None
    if ready is None:
        setup_error = _setup_failure(setup_log.text(), bwrap_status.text() if bwrap_status else None,
                                     any(r.get("python") for r in records), code, timed_out)
    else:
        unseen = [name for name, seen in (ready.get("importable") or {}).items() if not seen and _importable(name)]
        if unseen:  # our environment, not the team's code: e.g. a virtual environment others cannot read
            setup_error = (f"the evaluation environment is not fully visible inside the sandbox: "
                           f"{', '.join(unseen)} cannot be imported there (check the permissions of "
                           f"{', '.join(_python_roots())})")
    exit_code, sig = (None, -code) if code < 0 else (code, None)
    if exit_code is not None and exit_code > 128 and sandbox:  # bwrap reports a signal as 128 + n
        exit_code, sig = None, exit_code - 128
    return RunOutcome(exit_code, sig, timed_out, oom, round(wall, 3), log.text(), log.total, in_force,
                      setup_error, leftovers, ready)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _json_lines(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _setup_failure(setup_log: str, bwrap_status: str | None, python_up: bool, code: int,
                   timed_out: bool) -> str:
    """Why the team's code never started, from our own channels only: bubblewrap's status
    descriptor, the stderr that only bubblewrap, setpriv and the interpreter wrote before the
    bootstrap handed it to the team, and the bootstrap's status pipe."""
    lines = [line.strip() for line in setup_log.splitlines() if line.strip()]
    detail = f": {lines[-1][:300]}" if lines else ""
    if python_up:
        what = "the evaluator's bootstrap did not finish its set-up"
        return f"{what} before the timeout" if timed_out else f"{what} (exit status {code}){detail}"
    if timed_out:
        return f"the sandbox did not start before the timeout{detail}"
    if bwrap_status is not None and '"exit-code"' not in bwrap_status:
        return f"bubblewrap could not set up the sandbox{detail or f' (exit status {code})'}"
    return f"the evaluation interpreter did not start in the sandbox (exit status {code}){detail}"


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
