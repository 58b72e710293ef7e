"""A process killed with SIGKILL in the middle of a task: after a restart the task is ``interrupted``, never gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vy_nexus.config import load_settings
from vy_nexus.store import TaskState, open_task_store

# A child process killed with SIGKILL: the crash suite (slow, run by .ci/run).
pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from vy_nexus.config import load_settings
    from vy_nexus.experts.base import BaseExpert, ExpertOutput
    from vy_nexus.system import VyNexus
    from vy_nexus.tasks import Task

    class Forever(BaseExpert):
        id = "forever"
        name = "Forever"
        capabilities = ("forever",)

        async def execute(self, task):
            await asyncio.sleep(3600)
            return ExpertOutput("never")

    system = VyNexus(load_settings(sys.argv[1]), observe=False, load_plugins=False)
    system.register(Forever())
    with system:
        system.run(Task(id="doomed-task", description="run forever", context={"experts": ["forever"]}))
    """
)


def test_a_task_of_a_killed_process_is_interrupted_after_restart(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    child = subprocess.Popen([sys.executable, str(script), str(home)])
    settings = load_settings(home, environ={})
    try:
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline and state is not TaskState.RUNNING:
            time.sleep(0.05)
            if (home / "tasks" / "tasks.db").exists():
                with open_task_store(settings) as store:
                    page = store.list_tasks()
                    state = page.items[0].state if page.items else None
        assert state is TaskState.RUNNING, "the child never started its task"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    with open_task_store(settings) as store:
        record = store.get("doomed-task")
    assert record.state is TaskState.INTERRUPTED
    assert "stopped while it ran" in (record.error or "")
