"""schemathesis over the OpenAPI schema of a real server: generated requests to every operation, with a valid key;
no answer is a 5xx and every documented response matches its schema. About 100 cases per operation (> 1,000)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fakes.llm import ScriptedBackend
from live_api import api_settings, live_api
from vy_nexus.config import Settings
from vy_nexus.system import VyNexus

pytestmark = pytest.mark.slow


def scripted_system(settings: Settings) -> VyNexus:
    return VyNexus(settings, llm=ScriptedBackend("ok", delay=0.0), load_plugins=False)


def test_no_5xx_and_responses_match_the_schema(tmp_path: Path) -> None:
    # Imported here, not at collection: every default-suite worker collects this module, and schemathesis with
    # hypothesis costs seconds to import.
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    with live_api(api_settings(tmp_path / "home", rate_limit_per_minute=1_000_000), scripted_system) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        headers = {"Authorization": f"Bearer {live.key}"}
        cases = 0
        for found in schema.get_all_operations():
            operation = found.ok()

            @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            @given(case=operation.as_strategy())
            def check(case: Any) -> None:
                nonlocal cases
                cases += 1
                case.call_and_validate(base_url=live.url, headers=headers, checks=checks, timeout=30)

            check()
    assert cases >= 1000, cases
