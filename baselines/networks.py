"""Networks the baselines train beside the fixed Generator: defined once, in the kit's model.py."""

from __future__ import annotations

from baselines.kit import kit_model

Discriminator = kit_model().Discriminator
ImportanceNetwork = kit_model().ImportanceNetwork
