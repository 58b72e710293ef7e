"""The observability writer process's entry point: ``python -m vy_nexus.interfaces.writer``.

``VyNexus`` starts it (``observability/process_link.py``); nobody runs it by hand. The work is
``vy_nexus.observability.writer_process.main``; this module only turns its status into the process's exit status, as
the CLI's entry point does for commands. Importing it has no effect.
"""

from __future__ import annotations

import sys

from vy_nexus.observability.writer_process import main

if __name__ == "__main__":
    sys.exit(main())
