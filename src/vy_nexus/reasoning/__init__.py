"""vy-nexus reasoning layer."""
