"""The ``vy-nexus`` command line."""

from vy_nexus.interfaces.cli.app import app, main

__all__ = ["app", "main"]
