"""Building blocks for hostile team folders, shared by the hostile suite and the batch test."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path

N = 10

# Prepended to every hostile script: writes the N valid digits a well-behaved script would.
PRELUDE = textwrap.dedent(f"""
    import os, sys, time, socket, signal, ctypes, errno
    import numpy as np
    from PIL import Image
    N = int(os.environ.get("EVAL_NUM_SAMPLES", "{N}"))
    def write_samples(count=N, size=(28, 28), mode="L", folder="samples"):
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(count):
            shape = (size[1], size[0]) + ((len(mode),) if len(mode) > 1 else ())
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode if len(mode) > 1 else None).save(f"{{folder}}/{{i}}.png")
    libc = ctypes.CDLL(None, use_errno=True)
    def syscall_errno(number, *args):
        result = libc.syscall(number, *args)
        return result, ctypes.get_errno()
""")


def snapshot(*folders: Path, mnist_root: Path | None = None, depth: int = 40) -> dict:
    """Hashes of every file down to `depth` levels (a hostile folder may nest far deeper)."""
    state = {}
    pending = [(Path(folder), 0) for folder in folders]
    while pending:
        directory, level = pending.pop()
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                state[entry.path] = "dir"
                if level < depth:
                    pending.append((Path(entry.path), level + 1))
            elif entry.is_file(follow_symlinks=False):
                state[entry.path] = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
            else:
                state[entry.path] = "special"
    if mnist_root is not None:
        for path in sorted((mnist_root / "MNIST" / "raw").iterdir()):
            info = path.stat()
            state[str(path)] = (info.st_size, info.st_mtime_ns)
    return state
