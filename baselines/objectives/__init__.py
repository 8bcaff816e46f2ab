"""Objectives by variant name: `make_objective("wgan-gp")`."""

from __future__ import annotations

from collections.abc import Callable

from baselines.objectives.base import Objective, OptimizerSettings
from baselines.objectives.fgan import DIVERGENCES, FGAN
from baselines.objectives.msgan import MSGAN
from baselines.objectives.vanilla import Vanilla
from baselines.objectives.wgan import WGANGP, WGANClip

OBJECTIVES: dict[str, Callable[[], Objective]] = {
    "vanilla": Vanilla,
    "wgan": WGANClip,
    "wgan-gp": WGANGP,
    "msgan": MSGAN,
    **{f"fgan-{name}": (lambda name=name: FGAN(divergence=name)) for name in DIVERGENCES},
}
# The exponential divergences overflow without stabilisers (measured: KL, reverse KL, Neyman
# and Hellinger all diverged or collapsed within 40 epochs at Adam 2e-4): bound V, clip D's
# gradient norm at 1, and halve the learning rates.
for _name in ("kl", "reverse-kl", "neyman", "hellinger"):
    OBJECTIVES[f"fgan-{_name}"] = lambda name=_name: FGAN(
        divergence=name, v_bound=10.0, grad_clip=1.0,
        optimizer=OptimizerSettings("adam", lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999)))


def make_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise KeyError(f"unknown variant {name!r}; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]()


__all__ = ["OBJECTIVES", "Objective", "OptimizerSettings", "make_objective"]
