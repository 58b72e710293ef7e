"""Whether this home's background server (``vy-nexus start``) runs: for ``status``, ``stop`` and the shell."""

from __future__ import annotations

from typing import Any

from vy_nexus.config import Settings
from vy_nexus.interfaces.api.server import pid_file, read_info


def server_status(settings: Settings) -> dict[str, Any]:
    """``{"running": True, "url", "pid"}``; a pid file whose process is gone is removed and said so."""
    info = read_info(settings.home)
    if info is None:
        return {"running": False}
    if not info.alive:
        pid_file(settings.home).unlink(missing_ok=True)
        return {"running": False, "stale_pid_file_removed": True}
    return {"running": True, "url": info.url, "pid": info.pid}
