"""Runs INSIDE the sandbox: print the tensor shapes of checkpoints/G.pth as one JSON line.

Team files are never unpickled in the evaluator's own process; this script is.
"""

import json
import sys

try:
    import torch

    state = torch.load("checkpoints/G.pth", map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    shapes = {str(k): list(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    print("SHAPES " + json.dumps({"ok": True, "shapes": shapes}))
except Exception as err:  # noqa: BLE001 - reported, not raised
    print("SHAPES " + json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"[:500]}))
    sys.exit(0)
