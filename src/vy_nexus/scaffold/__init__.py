"""vy-nexus scaffold layer: generate new experts from the packaged templates (``vy-nexus create-expert``).

The entry point is ``vy_nexus.scaffold.create_expert.create_expert`` (not re-exported here, so the name keeps
meaning the module).
"""

from vy_nexus.scaffold.create_expert import ExpertSpec, ScaffoldResult, build_spec
from vy_nexus.scaffold.naming import ExpertName, ScaffoldError, normalise_name, parse_capabilities

__all__ = [
    "ExpertName",
    "ExpertSpec",
    "ScaffoldError",
    "ScaffoldResult",
    "build_spec",
    "normalise_name",
    "parse_capabilities",
]
