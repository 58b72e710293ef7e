"""vy-nexus foundation layer."""
