"""Build the routing strategy that ``routing.strategy`` names: hybrid (default), semantic or keyword.

The semantic modules (numpy, the encoder) are imported only when a semantic or hybrid strategy is chosen; the
encoder itself loads on the first routed task (about 0.3 s once per process, see docs/routing.md), and a task
that names its experts never loads it. When the strategy is left at its default and no sentence encoder is
installed, routing falls back to keyword and every decision's reason says why; a semantic or hybrid strategy set
in the config or environment fails instead, naming what is missing.
"""

from __future__ import annotations

from vy_nexus.config import Settings
from vy_nexus.errors import ConfigError
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.strategy import RoutingStrategy


def build_strategy(settings: Settings, registry: ExpertRegistry) -> RoutingStrategy:
    kind = settings.routing.strategy
    if kind == "keyword":
        return KeywordStrategy(registry)
    from vy_nexus.routing.semantic import SemanticStrategy

    try:
        semantic = SemanticStrategy.from_settings(registry, settings)
    except ConfigError as exc:
        if "routing.strategy" in settings.given_keys:
            raise
        return KeywordStrategy(registry, note=f"keyword only: the default {kind} strategy is unavailable ({exc})")
    if kind == "semantic":
        return semantic
    from vy_nexus.routing.hybrid import HybridStrategy

    return HybridStrategy(KeywordStrategy(registry), semantic)
