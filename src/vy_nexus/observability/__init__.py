"""vy-nexus observability layer."""
