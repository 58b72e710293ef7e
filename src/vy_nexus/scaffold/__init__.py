"""vy-nexus scaffold layer."""
