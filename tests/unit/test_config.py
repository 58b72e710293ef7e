from __future__ import annotations

from pathlib import Path

import pytest

from vy_nexus.config import default_home, get_key, load_settings
from vy_nexus.config_writer import parse_value, set_config_value
from vy_nexus.errors import ConfigError


def test_defaults_without_a_file(home: Path) -> None:
    settings = load_settings(home, environ={})
    assert settings.routing.cache.ttl_seconds == 300
    assert settings.routing.cache.max_size == 1000
    assert settings.reasoning_core.provider == "embedded"
    assert settings.safety.critical_error_threshold == 3
    assert settings.home == home.resolve()
    assert settings.metrics_db == home.resolve() / "metrics" / "performance.db"
    assert settings.state_file.name == "sovereign_state.json"
    assert settings.logs_dir.name == "research_logs"
    assert settings.experts_dir == home.resolve() / "experts"


def test_home_from_environment(tmp_path: Path) -> None:
    assert default_home({"VY_NEXUS_HOME": str(tmp_path)}) == tmp_path
    assert default_home({}) == Path.home() / ".vy-nexus"


def test_file_values_and_env_overrides(home: Path) -> None:
    (home / "config.yaml").write_text("routing:\n  cache:\n    ttl_seconds: 60\nlogging:\n  level: debug\n")
    settings = load_settings(
        home, environ={"VY_NEXUS_ROUTING__CACHE__MAX_SIZE": "5", "VY_NEXUS_LOGGING__LEVEL": "warn"}
    )
    assert settings.routing.cache.ttl_seconds == 60
    assert settings.routing.cache.max_size == 5
    assert settings.logging.level == "warn"


def test_unknown_key_names_key_and_file(home: Path) -> None:
    (home / "config.yaml").write_text("routing:\n  cahce:\n    ttl_seconds: 60\n")
    with pytest.raises(ConfigError) as info:
        load_settings(home, environ={})
    assert "routing.cahce" in str(info.value)
    assert str(home / "config.yaml") in str(info.value)


def test_wrong_type_names_key(home: Path) -> None:
    (home / "config.yaml").write_text("routing:\n  cache:\n    ttl_seconds: soon\n")
    with pytest.raises(ConfigError, match=r"routing\.cache\.ttl_seconds"):
        load_settings(home, environ={})


def test_bad_env_override_is_named(home: Path) -> None:
    with pytest.raises(ConfigError, match="environment"):
        load_settings(home, environ={"VY_NEXUS_SAFETY__CRITICAL_ERROR_THRESHOLD": "zero"})


@pytest.mark.parametrize("content", ["[1, 2]", "a: [unclosed", "home: /x"])
def test_malformed_files(home: Path, content: str) -> None:
    (home / "config.yaml").write_text(content)
    with pytest.raises(ConfigError):
        load_settings(home, environ={})


def test_empty_file_is_defaults(home: Path) -> None:
    (home / "config.yaml").write_text("# nothing yet\n")
    assert load_settings(home, environ={}).routing.top_k == 1


def test_get_key(home: Path) -> None:
    settings = load_settings(home, environ={})
    assert get_key(settings, "routing.cache.max_size") == 1000
    assert get_key(settings, "routing.cache")["ttl_seconds"] == 300
    with pytest.raises(ConfigError, match=r"unknown config key 'routing\.nope'"):
        get_key(settings, "routing.nope")


def test_configure_keeps_comments_and_validates(home: Path) -> None:
    path = home / "config.yaml"
    path.write_text("# my settings\nrouting:\n  # keep this comment\n  top_k: 2\n")
    assert set_config_value(home, "routing.cache.ttl_seconds", "42") == 42
    text = path.read_text()
    assert "# my settings" in text and "# keep this comment" in text
    assert load_settings(home, environ={}).routing.cache.ttl_seconds == 42
    assert load_settings(home, environ={}).routing.top_k == 2


def test_configure_refuses_bad_values_and_writes_nothing(home: Path) -> None:
    path = home / "config.yaml"
    path.write_text("routing:\n  top_k: 2\n")
    before = path.read_text()
    with pytest.raises(ConfigError, match=r"routing\.top_k"):
        set_config_value(home, "routing.top_k", "0")
    with pytest.raises(ConfigError, match="unknown config key"):
        set_config_value(home, "routing.nope", "1")
    with pytest.raises(ConfigError, match="not a section"):
        set_config_value(home, "routing.top_k.x", "1")
    assert path.read_text() == before


def test_configure_creates_file(home: Path) -> None:
    set_config_value(home, "file_system.allowed_paths", "[data, /tmp/x]")
    assert load_settings(home, environ={}).file_system.allowed_paths == ["data", "/tmp/x"]


def test_parse_value() -> None:
    assert parse_value("3") == 3
    assert parse_value("true") is True
    assert parse_value("") == ""
    assert parse_value("a: [") == "a: ["
