"""What a fresh `vy-nexus run` imports when no LLM is called: benchmarks/cli_startup.py measures its cold start, and
this guards what it must not load. The task store and the metrics need SQLAlchemy; the records the store reads
back (pydantic), the Prometheus registry, the HTTP clients, the LLM backends, the API and the templates do not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA_QUESTION = ("run", "total units by region in this csv", "--input", str(EXAMPLES / "sales.csv"))
CODE_CHECK = ("run", "check this python code", "--input", str(EXAMPLES / "mean.py"))

RUN_CLI = """
import sys
out = sys.argv.pop(1)
from vy_nexus.interfaces.cli import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
with open(out, "w", encoding="utf-8") as listing:
    listing.write("\\n".join([f"exit {code}", *sorted(sys.modules)]))
"""

NOT_FOR_A_RUN_WITHOUT_LLM = {
    "pydantic",  # the store's records: read back only by get/list and crash recovery
    "prometheus_client",  # built on the first exposition; nobody scrapes a CLI run
    "httpx",
    "openai",
    "ollama",
    "llama_cpp",
    "fastapi",
    "uvicorn",
    "starlette",
    "jinja2",
    "celery",
    "kombu",
    "yaml",  # config.yaml's parse is cached
    "ruamel",
}


def run_modules(tmp_path: Path, *args: str) -> set[str]:
    listing = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, str(listing), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert listing.exists(), done.stderr
    lines = listing.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "exit 0", (lines[0], done.stdout, done.stderr)
    return {name.split(".")[0] for name in lines[1:]}


@pytest.fixture
def keyword_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keyword routing from the home's config.yaml, as a user sets it (a VY_NEXUS_* variable loads pydantic-settings),
    validated once: later commands read the cached settings."""
    monkeypatch.delenv("VY_NEXUS_ROUTING__STRATEGY")
    (home / "config.yaml").write_text("routing:\n  strategy: keyword\n", encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "vy_nexus.interfaces.cli", "experts", "--json"], capture_output=True, check=True
    )
    return home


def test_a_data_question_loads_no_pydantic_no_llm_and_no_server_parts(tmp_path: Path, keyword_home: Path) -> None:
    loaded = run_modules(tmp_path, *DATA_QUESTION)
    assert "sqlalchemy" in loaded  # the task store commits the task before it runs
    assert not loaded & NOT_FOR_A_RUN_WITHOUT_LLM
    assert not loaded & {"numpy", "onnxruntime", "tokenizers"}  # keyword routing encodes nothing


def test_a_code_check_without_review_words_loads_no_llm(tmp_path: Path, keyword_home: Path) -> None:
    loaded = run_modules(tmp_path, *CODE_CHECK)
    assert not loaded & NOT_FOR_A_RUN_WITHOUT_LLM


@pytest.mark.slow  # loads the sentence encoder (about a second)
def test_a_hybrid_routed_data_question_loads_the_encoder_but_no_pydantic(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VY_NEXUS_ROUTING__STRATEGY")
    run_modules(tmp_path, "experts")  # validates and caches the (empty) configuration
    loaded = run_modules(tmp_path, *DATA_QUESTION)
    assert {"onnxruntime", "tokenizers"} <= loaded
    assert not loaded & NOT_FOR_A_RUN_WITHOUT_LLM
