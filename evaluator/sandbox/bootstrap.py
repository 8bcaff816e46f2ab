"""Runs INSIDE the sandbox, before and around the team's generate.py (standard library, numpy, torch).

    python -s bootstrap.py --status-fd N --trace-dir DIR --seed S -- generate.py --batch_size B

It is bound read-only outside the team's folder and imports what it needs before the team's folder
is put on sys.path, so a team module named like one of ours (`json.py`) cannot replace it. In order:
1. seeds `random` and numpy with the evaluation's seed, and installs an import hook that, when the
   program imports torch, loads the real torch (never a `torch.py` of the team's: the team's
   folder is skipped) and seeds it before the program gets it back; so a script that does not seed
   itself writes the same samples on a rerun, and a script that never imports torch pays nothing;
2. at that import, installs a global torch forward hook that records every module that runs a
   forward pass (class and parameter shapes) and, for each module whose output has 784 values per
   row, the latent rows it was given and its weights: the witnesses the evaluator replays through
   the fixed generator (`rule_check.py`), so nothing recorded here has to be trusted;
3. writes a status line when Python is up and another when its set-up is done, then closes the
   pipe: the proof, which team code cannot forge, that the sandbox came up before any team code;
4. sends stderr to stdout (the log) and runs generate.py as `__main__`;
5. records which kind of exception ended the program (`outcome.json`): NEEDS_GPU is decided from
   the exception object raised by torch's CUDA initialisation or deserialisation, never from text
   the program printed.

This file is also the protocol: the evaluator reads what it writes, with bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import runpy
import sys
import traceback
import weakref

MAX_WEIGHT_SETS = 16  # distinct weights (by content) recorded per process
MAX_VERSIONS = 4096  # tensor versions remembered before their weights are hashed again
MAX_LATENT_ROWS = 400_000  # per process, over every weight set (160 MB of float32)
MAX_MODULES = 500  # inventory entries per process


def _seed_python(seed: int) -> dict:
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
        return {"random": True, "numpy": True, "torch": "when imported"}
    except ImportError:
        return {"random": True, "numpy": False, "torch": "when imported"}


class TorchImportHook:
    """A meta-path finder for `torch` alone: finds it outside the team's folder, then runs `ready`
    on the freshly imported module before the importer sees it."""

    def __init__(self, team_dirs: list[str], ready) -> None:
        self.team_dirs = [os.path.realpath(d) for d in team_dirs]
        self.ready = ready

    def _ours(self, entry: str) -> bool:
        real = os.path.realpath(entry or ".")
        return not any(real == d or real.startswith(d + os.sep) for d in self.team_dirs)

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, [entry for entry in sys.path if self._ours(entry)])
        if spec is None or spec.loader is None:
            return None
        execute, ready = spec.loader.exec_module, self.ready

        def exec_module(module) -> None:
            execute(module)
            ready(module)

        spec.loader.exec_module = exec_module
        return spec


def _write_json(path: str, payload: dict) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as handle:
        json.dump(payload, handle)
    os.replace(temporary, path)


class Recorder:
    """Module inventory and generator witnesses, written under the trace folder as they appear."""

    def __init__(self, trace_dir: str, generator_shapes: list[tuple[int, ...]]) -> None:
        self.trace_dir = trace_dir
        self.generator_shapes = generator_shapes
        self.latent_values = generator_shapes[0][1]  # fc1.weight is (256, latent)
        self.output_values = generator_shapes[-1][0]  # fc4.bias is (784,)
        # Modules and weights are told apart by the objects themselves (weak references), never by
        # id(): Python reuses the id of a freed object, and a generator reloaded for every batch
        # frees one. The inventory has one entry per kind of module (class and parameter shapes).
        self.entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.modules: dict[tuple, dict] = {}
        self.versions: dict[tuple, tuple[tuple, int]] = {}  # (id, version, pointer)s -> (weak refs, set)
        self.weight_sets: dict[str, int] = {}  # content digest -> weight set
        self.rows = 0
        self.depth = 0  # forward passes in progress: a module called inside another is "nested"
        self.pid = os.getpid()

    def enter(self, module, args) -> None:
        self.depth += 1

    def _reset_after_fork(self) -> None:
        if os.getpid() != self.pid:  # a forked child writes files of its own
            self.pid = os.getpid()
            self.entries, self.modules = weakref.WeakKeyDictionary(), {}
            self.versions, self.weight_sets, self.rows = {}, {}, 0

    def hook(self, module, args, output) -> None:
        self.depth = max(self.depth - 1, 0)
        try:
            self._record(module, args, output, nested=self.depth > 0)
        except Exception:  # noqa: BLE001 - recording must never change what the team's code does
            pass

    def _record(self, module, args, output, nested: bool) -> None:
        import torch

        self._reset_after_fork()
        entry = self.entries.get(module)
        if entry is None:
            parameters = list(module.named_parameters())
            kind = (f"{type(module).__module__}.{type(module).__qualname__}"[:200],
                    tuple((name[:200], tuple(p.shape)) for name, p in parameters[:64]), len(parameters))
            entry = self.modules.get(kind)
            if entry is None:
                if len(self.modules) >= MAX_MODULES:
                    return
                entry = {"class": kind[0], "parameters": [[name, list(shape)] for name, shape in kind[1]],
                         "parameter_count": kind[2], "buffers": len(list(module.buffers())), "calls": 0,
                         "generator_calls": 0, "outermost_generator_calls": 0, "latent_values": None}
                self.modules[kind] = entry
                self._write_inventory()
            self.entries[module] = entry
        entry["calls"] += 1
        if not (isinstance(output, torch.Tensor) and output.dim() >= 1 and len(output) > 0
                and output.is_floating_point() and output[0].numel() == self.output_values):
            return
        latent = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if latent is None or latent.dim() < 1 or len(latent) != len(output):
            return
        first_outermost = not nested and entry["outermost_generator_calls"] == 0
        entry["generator_calls"] += 1
        entry["outermost_generator_calls"] += 0 if nested else 1
        if entry["latent_values"] is None or first_outermost:
            entry["latent_values"] = int(latent[0].numel())
            self._write_inventory()
        if latent[0].numel() != self.latent_values:
            return
        parameters = [p for _, p in module.named_parameters()]
        version = tuple((id(p), p._version, p.data_ptr()) for p in parameters)
        known = self.versions.get(version)
        if known is not None and all(ref() is p for ref, p in zip(known[0], parameters)):
            weight_set = known[1]
        else:
            # Weights are kept only for a module shaped like the fixed generator: each of its eight
            # tensors has a shape of its own, which names its layer whatever the registration order.
            by_shape = {tuple(p.shape): p for p in parameters}
            if len(parameters) != len(self.generator_shapes) or set(by_shape) != set(self.generator_shapes):
                return
            import numpy

            arrays = {f"p{i}": by_shape[shape].detach().to("cpu", torch.float32).numpy()
                      for i, shape in enumerate(self.generator_shapes)}
            digest = hashlib.sha256(b"".join(numpy.ascontiguousarray(a).tobytes() for a in arrays.values()))
            weight_set = self.weight_sets.get(digest.hexdigest())
            if weight_set is None:  # weights seen before (the same file loaded again) share one set
                if len(self.weight_sets) >= MAX_WEIGHT_SETS:
                    return
                weight_set = len(self.weight_sets)
                self.weight_sets[digest.hexdigest()] = weight_set
                path = os.path.join(self.trace_dir, f"weights-{self.pid}-{weight_set}.npz")
                numpy.savez(path + ".tmp.npz", **arrays)
                os.replace(path + ".tmp.npz", path)
            if len(self.versions) >= MAX_VERSIONS:
                self.versions.clear()
            self.versions[version] = (tuple(weakref.ref(p) for p in parameters), weight_set)
        rows = latent.detach().reshape(len(latent), -1).to("cpu", torch.float32).numpy()
        if self.rows + len(rows) > MAX_LATENT_ROWS:
            return
        self.rows += len(rows)
        with open(os.path.join(self.trace_dir, f"latents-{self.pid}-{weight_set}.f32"), "ab") as handle:
            handle.write(rows.tobytes())

    def flush(self) -> None:
        """The final call counts (the files written on the way carry everything but these)."""
        if self.modules and os.getpid() == self.pid:
            self._write_inventory()

    def _write_inventory(self) -> None:
        _write_json(os.path.join(self.trace_dir, f"modules-{self.pid}.json"),
                    {"modules": list(self.modules.values())})


def _classify_exception(error: BaseException) -> dict:
    """What ended the program, from the exception object (not from printed text)."""
    frames = traceback.extract_tb(error.__traceback__)
    team_frames = [f for f in frames if f.filename.startswith(os.getcwd() + os.sep)
                   or not os.path.isabs(f.filename)]
    innermost = frames[-1] if frames else None
    where = team_frames[-1] if team_frames else None
    record = {"type": type(error).__name__, "message": str(error)[:500], "cuda": None,
              "team_line": None}
    if where is not None:
        record["team_line"] = {"file": os.path.relpath(where.filename) if os.path.isabs(where.filename)
                               else where.filename, "line": where.lineno, "code": (where.line or "")[:300]}
    if innermost is not None:
        torch_file = innermost.filename.replace(os.sep, "/")
        if "/torch/cuda/" in torch_file:
            record["cuda"] = "cuda_call"
        elif torch_file.endswith("/torch/serialization.py") and "CUDA" in str(error):
            record["cuda"] = "cuda_checkpoint"
    return record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("--trace-dir", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--generator-shapes", type=json.loads, required=True,
                        help="JSON list of the fixed generator's parameter shapes, in layer order")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--site", default=None, help="installed requirements, searched after everything else")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    status = os.fdopen(options.status_fd, "w", buffering=1)
    status.write(json.dumps({"python": sys.version.split()[0], "pid": os.getpid(), "uid": os.getuid()}) + "\n")

    seeded = _seed_python(options.seed)
    recorder = Recorder(options.trace_dir, [tuple(shape) for shape in options.generator_shapes])

    def torch_ready(torch) -> None:
        torch.manual_seed(options.seed)  # every CUDA device too
        if not options.no_trace:
            from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

            register_module_forward_pre_hook(recorder.enter)
            register_module_forward_hook(recorder.hook, always_call=True)

    script = command[0] if command else "generate.py"
    team_dir = os.path.dirname(os.path.abspath(script))
    sys.meta_path.insert(0, TorchImportHook([team_dir, os.getcwd()], torch_ready))
    from importlib.machinery import PathFinder

    importable = {name: PathFinder.find_spec(name, sys.path) is not None for name in ("numpy", "torch", "PIL")}
    status.write(json.dumps({"team_code": True, "seed": options.seed, "seeded": seeded,
                             "traced": not options.no_trace, "importable": importable}) + "\n")
    status.close()  # from here on, only the team's code runs: nothing it writes can reach this pipe

    os.dup2(1, 2)  # the team's stderr joins its stdout in the log; ours stays apart before this line
    sys.stderr = sys.stdout
    sys.argv = list(command) or [script]
    sys.path.insert(0, team_dir)
    if options.site:  # last: an installed requirement can add a package, never replace one
        sys.path.append(options.site)
    outcome: dict = {"exception": None, "exit": 0}
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        outcome["exit"] = stop.code if isinstance(stop.code, int) or stop.code is None else 1
        raise
    except BaseException as error:  # printed the way Python prints it, without our two frames
        outcome["exception"] = _classify_exception(error)
        outcome["exit"] = 1
        frames = [f for f in traceback.extract_tb(error.__traceback__)  # ours and runpy's (frozen too)
                  if f.filename not in (__file__, runpy.__file__) and not f.filename.startswith("<frozen ")]
        print("Traceback (most recent call last):", file=sys.stderr)
        print("".join(traceback.format_list(frames)), end="", file=sys.stderr)
        print("".join(traceback.format_exception_only(type(error), error)), end="", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        try:
            recorder.flush()
            _write_json(os.path.join(options.trace_dir, "outcome.json"), outcome)
        except OSError:
            pass


if __name__ == "__main__":
    main()
