"""vy-nexus routing layer."""
