"""What a fresh `vy-nexus` process imports: the cold-start budget (benchmarks/cli_startup.py measures the time) holds
only while `--version` and `--help` import no command module and no pydantic, and a keyword `route` imports none of
the task store, the service, the HTTP clients, the LLM, the sentence encoder, asyncio or (config.yaml unchanged
since its last validation) pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vy_nexus.interfaces.cli.catalog import COMMANDS

RUN_CLI = """
import sys
out = sys.argv.pop(1)
from vy_nexus.interfaces.cli import main
try:
    main()
except SystemExit:
    pass
with open(out, "w", encoding="utf-8") as listing:
    listing.write("\\n".join(sorted(sys.modules)))
"""

COMMAND_MODULES = {entry.module for entry in COMMANDS}


def modules_after(tmp_path: Path, *args: str) -> set[str]:
    listing = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, str(listing), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert listing.exists(), done.stderr
    return set(listing.read_text(encoding="utf-8").splitlines())


def test_version_and_help_load_no_command_module_and_no_pydantic(tmp_path: Path) -> None:
    for args in (["--version"], ["--help"]):
        loaded = modules_after(tmp_path, *args)
        assert not loaded & COMMAND_MODULES, args
        assert not {"pydantic", "vy_nexus.config", "vy_nexus.system", "rich.console", "importlib.metadata"} & loaded


def test_a_keyword_route_loads_only_what_routing_needs(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keyword routing from the home's config.yaml, as a user sets it: a VY_NEXUS_* variable (the tests' default)
    # loads pydantic-settings, which imports asyncio itself.
    monkeypatch.delenv("VY_NEXUS_ROUTING__STRATEGY")
    (home / "config.yaml").write_text("routing:\n  strategy: keyword\n", encoding="utf-8")
    first = modules_after(tmp_path, "route", "fix the bug in this python function")
    assert "pydantic" in first  # a config file never validated before is validated (and the result cached)
    loaded = modules_after(tmp_path, "route", "fix the bug in this python function")
    assert "pydantic" not in loaded and "yaml" not in loaded  # issue 16: ~60 % of the command's instructions
    assert "vy_nexus.interfaces.cli.core_commands" in loaded and "vy_nexus.routing.keyword" in loaded
    assert "asyncio" not in loaded  # routing runs no event loop (issue 16: ~5% of the command's instructions)
    assert "logging" not in loaded  # the event bus loads it only when a subscriber fails
    assert not loaded & (COMMAND_MODULES - {"vy_nexus.interfaces.cli.core_commands"})
    heavy = {
        "sqlalchemy",
        "fastapi",
        "uvicorn",
        "httpx",
        "numpy",
        "onnxruntime",
        "tokenizers",
        "llama_cpp",
        "celery",
        "prometheus_client",
        "ruamel",
        "filelock",
    }
    assert not {name.split(".")[0] for name in loaded} & heavy


def test_status_loads_no_database_layer_no_metrics_and_no_http_client(tmp_path: Path, home: Path) -> None:
    """`vy-nexus status` reports settings, experts, the executor and the pid file: SQLAlchemy, prometheus_client and
    httpx were half its start-up (2,145 M → 1,253 M instructions)."""
    loaded = modules_after(tmp_path, "status")
    assert "vy_nexus.interfaces.api.server" in loaded
    assert not {name.split(".")[0] for name in loaded} & {"sqlalchemy", "prometheus_client", "httpx", "fastapi"}


def test_status_hides_a_store_password(home: Path) -> None:
    from typer.testing import CliRunner

    from vy_nexus.interfaces.cli import app

    (home / "config.yaml").write_text("store:\n  url: postgresql://vy:s3cret@db.example:5432/vy\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--home", str(home), "status", "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"url": "postgresql://vy:***@db.example:5432/vy"' in result.stdout and "s3cret" not in result.stdout
