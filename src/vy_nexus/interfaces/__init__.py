"""vy-nexus interfaces layer."""
