"""The README's "Run it as a service" examples, run against a real server: the curl commands and the OpenAI client
example, as written (only the address and the key change)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fakes.llm import ScriptedBackend
from live_api import api_settings, live_api
from vy_nexus.config import Settings
from vy_nexus.system import VyNexus

README = Path(__file__).resolve().parents[2] / "README.md"
ADDRESS = "http://127.0.0.1:8000"


def service_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Run it as a service\n")
    return text[start : text.index("\n## ", start + 1)]


def scripted_system(settings: Settings) -> VyNexus:
    return VyNexus(settings, llm=ScriptedBackend("Looks fine.", delay=0.0), load_plugins=False)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_examples(tmp_path: Path) -> None:
    block = re.findall(r"```bash\n(.*?)```", service_section(), flags=re.DOTALL)[1]
    submit, follow = block.replace("\\\n", "").strip().splitlines()
    with live_api(api_settings(tmp_path / "home"), scripted_system) as api:
        env = {**os.environ, "VY_NEXUS_API_KEY": api.key}
        accepted = json.loads(_bash(submit.replace(ADDRESS, api.url), env))
        assert accepted["state"] == "queued"
        events = _bash(follow.replace(ADDRESS, api.url).replace("TASK_ID", accepted["id"]), env)
    assert "event: task.routed" in events
    result = json.loads(events.split("event: result\ndata: ", 1)[1].splitlines()[0])
    assert result["output"]["result"] == [{"region": "north", "sum_units": 5}, {"region": "south", "sum_units": 4}]


def test_the_openai_client_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = re.findall(r"```py\n(.*?)```", service_section(), flags=re.DOTALL)
    with live_api(api_settings(tmp_path / "home"), scripted_system) as api:
        monkeypatch.setenv("VY_NEXUS_API_KEY", api.key)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code.replace(ADDRESS, api.url), "README.md", "exec"), {})
    assert out.getvalue().startswith("['code'] ")
    assert "Looks fine." in out.getvalue()


def _bash(command: str, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout
