"""``python -m vy_nexus.interfaces.cli``: the ``vy-nexus`` command (how ``vy-nexus start`` launches the server)."""

from vy_nexus.interfaces.cli.app import main

main()
