"""vy-nexus execution layer."""
