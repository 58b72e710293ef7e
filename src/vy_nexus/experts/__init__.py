"""vy-nexus experts: the base class, the registry and the built-ins."""

from vy_nexus.experts.base import BaseExpert, ExpertContext, ExpertOutput
from vy_nexus.experts.registry import ExpertRegistry

__all__ = ["BaseExpert", "ExpertContext", "ExpertOutput", "ExpertRegistry"]
