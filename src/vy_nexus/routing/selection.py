"""Build the routing strategy that ``routing.strategy`` names: keyword (default), semantic or hybrid.

The semantic modules (numpy, the encoder) are imported only when a semantic or hybrid strategy is chosen, so the
default keyword setup starts without them; the encoder itself loads on the first routed task.
"""

from __future__ import annotations

from vy_nexus.config import Settings
from vy_nexus.experts.registry import ExpertRegistry
from vy_nexus.routing.keyword import KeywordStrategy
from vy_nexus.routing.strategy import RoutingStrategy


def build_strategy(settings: Settings, registry: ExpertRegistry) -> RoutingStrategy:
    kind = settings.routing.strategy
    if kind == "keyword":
        return KeywordStrategy(registry)
    from vy_nexus.routing.semantic import SemanticStrategy

    semantic = SemanticStrategy.from_settings(registry, settings)
    if kind == "semantic":
        return semantic
    from vy_nexus.routing.hybrid import HybridStrategy

    return HybridStrategy(KeywordStrategy(registry), semantic)
