"""A vy-nexus process that observes on a clock the test sets: ``python observer_process.py HOME NAME``.

It builds the real ``Observability`` for HOME on an ``EventBus`` whose clock the test drives, and reads commands on
stdin, answering ``ok`` on stdout once each is done:

* ``at TIMESTAMP LABEL``: publish, at that time, one journal entry ``NAME LABEL`` and one expert run (a metrics row);
* ``burst COUNT FIRST STEP``: publish COUNT such pairs at FIRST, FIRST+STEP, ... without waiting for the disk;
* ``flush``: wait until everything published is written.

At the end of stdin it stops (writing what is left) and exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vy_nexus.config import load_settings
from vy_nexus.events import EventBus
from vy_nexus.observability import Observability


def main(home: Path, name: str) -> None:
    now = [0.0]
    bus = EventBus(clock=lambda: now[0])
    observability = Observability(load_settings(home), bus)
    observability.start()

    def publish(when: float, label: str) -> None:
        now[0] = when
        bus.publish("test.entry", "test", f"{name} {label}", metadata={"writer": name, "label": label})
        metadata = {"duration_ms": 1.0, "success": True, "task_type": name}
        bus.publish("expert.finished", "test", f"{name} {label} ran", level="debug", expert_id=name, metadata=metadata)

    for line in sys.stdin:
        command, *args = line.split()
        if command == "at":
            publish(float(args[0]), args[1])
        elif command == "burst":
            count, first, step = int(args[0]), float(args[1]), float(args[2])
            for index in range(count):
                publish(first + index * step, f"burst-{index}")
        elif command == "flush" and not observability.flush(timeout=30):
            raise SystemExit("flush timed out")
        print("ok", flush=True)
    observability.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
