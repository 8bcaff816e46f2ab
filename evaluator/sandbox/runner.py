"""Run a command in a staged submission under bubblewrap, with limits and a hard timeout.

Layout inside the sandbox: the system (/usr, /bin, /lib*, /etc) and the evaluation Python
read-only; the submission copy read-only at /submission, except /submission/samples, which
is writable and size- and inode-limited; a size-limited tmpfs /tmp; fresh /proc and /dev; no
network; a cleared environment; an unprivileged uid. Nothing else of the host is visible:
not MNIST, not the reference statistics, not other submissions, results or home folders.
"""

from __future__ import annotations

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
from pathlib import Path

from evaluator.sandbox.cgroups import Cgroup
from evaluator.sandbox.limits import Limits

SANDBOX_UID = 65534  # nobody
LOG_TAIL_BYTES = 64 * 1024
INSIDE = "/submission"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")
ENV_ALLOWLIST = {"LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
                 "HOME": "/tmp", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp", "TORCH_HOME": "/tmp/torch",
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
    sandbox_error: str | None = None
    leftover_processes: int = 0


class _TailReader(threading.Thread):
    """Drain a pipe, keeping only the last LOG_TAIL_BYTES."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.chunks: deque[bytes] = deque()
        self.kept = 0
        self.total = 0

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.total += len(chunk)
            self.chunks.append(chunk)
            self.kept += len(chunk)
            while self.kept - len(self.chunks[0]) >= LOG_TAIL_BYTES:
                self.kept -= len(self.chunks.popleft())

    def text(self) -> str:
        return b"".join(self.chunks)[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace")


def _python_roots() -> list[str]:
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
             os.path.realpath(sys.exec_prefix)}
    return sorted(r for r in roots if not any(r.startswith(d + "/") for d in SYSTEM_DIRS))


def _mount_samples_tmpfs(path: Path, limits: Limits) -> bool:
    """As root, back samples/ by a tmpfs with size and inode caps; False where not possible."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    options = f"size={limits.samples_max_bytes},nr_inodes={limits.samples_max_files + 16},mode=0777"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def build_command(staged: Path, samples: Path, argv: list[str], limits: Limits, gpu: bool,
                  drop_privileges: bool, env: dict[str, str]) -> list[str]:
    command = [bubblewrap() or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net",
               "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session",
               "--hostname", "sandbox"]
    for directory in SYSTEM_DIRS:
        if os.path.isdir(directory):
            command += ["--ro-bind", directory, directory]
    for root in _python_roots():
        # bwrap would copy the host parents' modes (/root is 0700): make them traversable.
        for parent in reversed(Path(root).parents[:-1]):
            command += ["--perms", "0755", "--dir", str(parent)]
        command += ["--ro-bind", root, root]
    command += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
                "--ro-bind", str(staged), INSIDE,
                "--bind", str(samples), f"{INSIDE}/samples",
                "--chdir", INSIDE, "--clearenv"]
    if gpu:
        for device in (*sorted(str(p) for p in Path("/dev").glob("nvidia[0-9]*")), *NVIDIA_DEVICES):
            if os.path.exists(device):
                command += ["--dev-bind", device, device]
    path_dirs = [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]
    full_env = {**ENV_ALLOWLIST, "PATH": ":".join(path_dirs), **env}
    for key, value in full_env.items():
        command += ["--setenv", key, value]
    if drop_privileges:
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    shutil.which("setpriv") or "/usr/bin/setpriv",
                    f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return [*command, "--", *argv]


def run_sandboxed(staged: Path, argv: list[str], limits: Limits, gpu: bool = False,
                  sandbox: bool = True, env: dict[str, str] | None = None) -> RunOutcome:
    """Run `argv` with `staged` as working directory; the samples land in staged/samples."""
    samples = staged / "samples"
    samples.mkdir(exist_ok=True)
    env = env or {}
    in_force: dict = {"timeout_s": limits.timeout_s, "sandbox": "bubblewrap" if sandbox else "none"}
    if sandbox and not bubblewrap():
        raise SandboxUnavailable(INSTALL_HINT)
    tmpfs = sandbox and _mount_samples_tmpfs(samples, limits)
    in_force["samples_tmpfs"] = tmpfs
    in_force["samples"] = (f"tmpfs {limits.samples_max_bytes} bytes, {limits.samples_max_files} files"
                           if tmpfs else "plain folder (count checked after the run)")
    os.chmod(samples, 0o777)
    root = os.geteuid() == 0
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
        in_force["pids"] = f"RLIMIT_NPROC {limits.pids}" if (root and sandbox) else "none"
    in_force["uid"] = SANDBOX_UID if (root and sandbox) else os.geteuid()
    in_force["max_file_bytes"] = limits.max_file_bytes

    def prepare_child() -> None:  # runs in the child between fork and exec
        if cgroup is not None:
            cgroup.enter()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        if root and sandbox:  # counts the sandbox uid's processes, so only meaningful after the drop
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.pids, limits.pids))
        if use_rlimit_as:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

    if sandbox:
        command = build_command(staged, samples, argv, limits, gpu, drop_privileges=root, env=env)
        cwd, child_env = None, {}
    else:
        command = argv
        cwd, child_env = str(staged), {**ENV_ALLOWLIST, "PATH": os.environ.get("PATH", ""), **env}
    started = time.monotonic()
    timed_out = False
    try:
        process = subprocess.Popen(command, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   preexec_fn=prepare_child, start_new_session=True)
    except OSError as err:
        _cleanup(cgroup, samples if tmpfs else None)
        return RunOutcome(None, None, False, False, 0.0, "", 0, in_force, f"cannot start: {err}")
    reader = _TailReader(process.stdout)
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
        reader.join(timeout=5)
    wall = time.monotonic() - started
    code = process.returncode
    oom = cgroup.oom_killed() if cgroup is not None else False
    if cgroup is not None:
        peak = cgroup.peak_memory()
        if peak is not None:
            in_force["peak_memory_bytes"] = peak
        cgroup.remove()
    log = reader.text()
    sandbox_error = None
    if sandbox and code == 1 and log.startswith("bwrap:"):
        sandbox_error = log.strip().splitlines()[0]
    exit_code, sig = (None, -code) if code < 0 else (code, None)
    if exit_code is not None and exit_code > 128 and sandbox:  # bwrap reports a signal as 128 + n
        exit_code, sig = None, exit_code - 128
    return RunOutcome(exit_code, sig, timed_out, oom, round(wall, 3), log, reader.total, in_force,
                      sandbox_error, leftovers)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _cleanup(cgroup: Cgroup | None, mount: Path | None) -> None:
    if cgroup is not None:
        cgroup.kill_all()
        cgroup.remove()
    if mount is not None:
        unmount(mount)
