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
    # KL's exp(v - 1) explodes without a stabiliser: clip D's gradient norm at 1.
    "fgan-kl": lambda: FGAN(divergence="kl", grad_clip=1.0),
    **{f"fgan-{name}": (lambda name=name: FGAN(divergence=name)) for name in DIVERGENCES if name != "kl"},
}


def make_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise KeyError(f"unknown variant {name!r}; choose from {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]()


__all__ = ["OBJECTIVES", "Objective", "OptimizerSettings", "make_objective"]
