from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vy_nexus.config import RoutingSettings, Settings, default_home, get_key, load_settings, validate_settings
from vy_nexus.config_writer import parse_value, prepare_config_edit, set_config_value
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


def test_precedence_defaults_file_environment_arguments(home: Path) -> None:
    (home / "config.yaml").write_text("routing:\n  top_k: 2\n  cache:\n    ttl_seconds: 60\n")
    environ = {"VY_NEXUS_ROUTING__TOP_K": "3"}
    assert load_settings(home, environ={}).routing.top_k == 2
    routing = load_settings(home, environ=environ).routing
    assert (routing.top_k, routing.cache.ttl_seconds, routing.cache.max_size) == (3, 60, 1000)
    settings = load_settings(home, environ=environ, routing={"top_k": 4})
    assert (settings.routing.top_k, settings.routing.cache.ttl_seconds) == (4, 60)


def test_environment_values_get_natural_types(home: Path) -> None:
    settings = load_settings(
        home,
        environ={
            "VY_NEXUS_ROUTING__CACHE__ENABLED": "false",
            "VY_NEXUS_REASONING_CORE__TEMPERATURE": "0.25",
            "VY_NEXUS_REASONING_CORE__MODEL": "1.5",  # a str key keeps its text
            "VY_NEXUS_FILE_SYSTEM__ALLOWED_PATHS": "[data, /srv/docs]",
            "VY_NEXUS_EXPERTS__DISABLED": '["code"]',
            "vy_nexus_logging__level": "error",  # names are not case-sensitive
        },
    )
    assert settings.routing.cache.enabled is False
    assert settings.reasoning_core.temperature == 0.25 and settings.reasoning_core.model == "1.5"
    assert settings.file_system.allowed_paths == ["data", "/srv/docs"]
    assert settings.experts.disabled == ["code"] and settings.logging.level == "error"


def test_environment_errors_name_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(home, environ={"VY_NEXUS_ROUTING__NOPE": "1", "VY_NEXUS_ROUTING__TOP_K": "0"})
    message = str(info.value)
    assert message.startswith("invalid configuration in VY_NEXUS_* environment variables: ")
    assert "unknown key 'routing.nope' [VY_NEXUS_ROUTING__NOPE]" in message
    assert "key 'routing.top_k'" in message and "[VY_NEXUS_ROUTING__TOP_K]" in message
    in_a_list = r"key 'file_system\.allowed_paths\.1'.*\[VY_NEXUS_FILE_SYSTEM__ALLOWED_PATHS\]"
    with pytest.raises(ConfigError, match=in_a_list):
        load_settings(home, environ={"VY_NEXUS_FILE_SYSTEM__ALLOWED_PATHS": "[data, {a: b}]"})
    with pytest.raises(ConfigError, match=r"environment variables: .*allowed_paths = '\[a'"):
        load_settings(home, environ={"VY_NEXUS_FILE_SYSTEM__ALLOWED_PATHS": "[a"})


def test_each_error_names_its_own_source(home: Path) -> None:
    (home / "config.yaml").write_text("routing:\n  strategy: psychic\n")
    with pytest.raises(ConfigError) as info:
        load_settings(home, environ={"VY_NEXUS_SAFETY__WINDOW_SECONDS": "-1"}, governance={"max_retries": -1})
    message = str(info.value)
    assert f"invalid configuration in {home / 'config.yaml'}: key 'routing.strategy'" in message
    assert "environment variables: key 'safety.window_seconds'" in message
    assert "invalid configuration in the arguments: key 'governance.max_retries'" in message


def test_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.yaml").write_text("routing:\n  top_k: 5\n")
    settings = load_settings(environ={"VY_NEXUS_HOME": str(elsewhere)})
    assert settings.home == elsewhere.resolve() and settings.routing.top_k == 5  # the file of that home is read
    assert load_settings(tmp_path / "given", environ={"VY_NEXUS_HOME": str(elsewhere)}).routing.top_k == 1
    monkeypatch.chdir(tmp_path)
    assert load_settings("relative", environ={}).home == tmp_path / "relative"
    monkeypatch.delenv("VY_NEXUS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings(environ={}).home == (tmp_path / ".vy-nexus").resolve()
    assert load_settings(environ={"VY_NEXUS_HOME": ""}).home == (tmp_path / ".vy-nexus").resolve()  # empty: unset


def test_settings_read_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VY_NEXUS_HOME", str(tmp_path))
    monkeypatch.setenv("VY_NEXUS_ROUTING__TOP_K", "7")
    (tmp_path / "config.yaml").write_text("routing:\n  fallback_expert: writing\n")
    settings = load_settings()
    assert settings.home == tmp_path.resolve()
    assert (settings.routing.top_k, settings.routing.fallback_expert) == (7, "writing")
    assert isinstance(settings, Settings)


def test_settings_built_directly_are_the_values_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VY_NEXUS_HOME", str(tmp_path))
    monkeypatch.setenv("VY_NEXUS_ROUTING__TOP_K", "7")
    settings = validate_settings({"routing": {"top_k": 2}})
    assert (settings.routing.top_k, settings.home) == (2, tmp_path.resolve())
    assert settings.given_keys == {"routing", "routing.top_k"}
    assert Settings().routing.top_k == 1 and Settings(routing=RoutingSettings(top_k=3)).routing.top_k == 3
    assert Settings().home == tmp_path.resolve()


def test_the_file_alone_is_read_without_pydantic_settings(tmp_path: Path) -> None:
    """The common case (no VY_NEXUS_* override, no arguments) must not import pydantic-settings: a CLI command's
    start-up pays for it (issue 16)."""
    (tmp_path / "config.yaml").write_text("routing:\n  strategy: keyword\n")
    seen = in_fresh_process(
        tmp_path,
        "settings = load_settings(home, environ={'VY_NEXUS_HOME': '', 'VY_NEXUS_LOGGING__LEVEL': ''})",
        "seen = {'strategy': settings.routing.strategy, 'file only': 'pydantic_settings' in sys.modules}",
        "seen['top_k'] = load_settings(home, environ={'VY_NEXUS_ROUTING__TOP_K': '3'}).routing.top_k",
        "seen['with a variable'] = 'pydantic_settings' in sys.modules",
    )
    assert seen == {"strategy": "keyword", "file only": False, "top_k": 3, "with a variable": True}


def in_fresh_process(home: Path, *lines: str) -> Any:
    """Run ``lines`` in a new interpreter (what a command imports), with ``sys``, ``load_settings`` and ``home``;
    returns the ``seen`` mapping they fill, for the test to assert on."""
    preamble = ["import json, sys", "from vy_nexus.config import load_settings", "home = sys.argv[1]"]
    script = "\n".join([*preamble, *lines, "print(json.dumps(seen))"])
    done = subprocess.run([sys.executable, "-c", script, str(home)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_an_unchanged_validated_file_loads_without_pydantic(tmp_path: Path) -> None:
    """Issue 16: pydantic's import and model building were about 60 % of a keyword route's start-up."""
    (tmp_path / "config.yaml").write_text("routing:\n  strategy: keyword\n  cache: {ttl_seconds: 60}\n")
    first = load_settings(tmp_path, environ={})  # validates, and caches the validated settings
    seen = in_fresh_process(
        tmp_path,
        "settings = load_settings(home, environ={})",
        "seen = {'pydantic': 'pydantic' in sys.modules, 'yaml': 'yaml' in sys.modules}",
        "seen['routing'] = [settings.routing.strategy, settings.routing.cache.ttl_seconds]",
        "seen['given'] = sorted(settings.given_keys)",
    )
    assert seen == {
        "pydantic": False,
        "yaml": False,
        "routing": ["keyword", 60.0],
        "given": ["routing", "routing.cache", "routing.cache.ttl_seconds", "routing.strategy"],
    }
    again = load_settings(tmp_path, environ={})
    assert again == first and again.given_keys == first.given_keys


def test_the_command_after_configure_loads_without_pydantic(tmp_path: Path) -> None:
    """`configure` validated the new text before writing it: the next command need not validate it again."""
    set_config_value(tmp_path, "routing.strategy", "keyword")
    set_config_value(tmp_path, "routing.cache.ttl_seconds", 60)
    seen = in_fresh_process(
        tmp_path,
        "settings = load_settings(home, environ={})",
        "seen = {'pydantic': 'pydantic' in sys.modules, 'yaml': 'yaml' in sys.modules}",
        "seen['routing'] = [settings.routing.strategy, settings.routing.cache.ttl_seconds]",
    )
    assert seen == {"pydantic": False, "yaml": False, "routing": ["keyword", 60.0]}


def test_only_a_changed_text_or_schema_is_validated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vy_nexus.config as config
    from vy_nexus.config_parse_cache import cache_path

    validated: list[Any] = []

    def counting(values: Any, home: Any = None, *, source: str = "the arguments") -> Settings:
        validated.append(values)
        return validate_settings(values, home, source=source)

    monkeypatch.setattr(config, "validate_settings", counting)
    path = tmp_path / "config.yaml"
    path.write_text("routing:\n  top_k: 2\n")
    assert [load_settings(tmp_path, environ={}).routing.top_k for _ in range(3)] == [2, 2, 2]
    assert len(validated) == 1
    path.write_text("routing:\n  top_k: 3\n")
    assert load_settings(tmp_path, environ={}).routing.top_k == 3 and len(validated) == 2
    entry = json.loads(cache_path(path).read_text())
    assert entry["settings"]["routing"]["top_k"] == 3 and "home" not in entry["settings"]
    cache_path(path).write_text(json.dumps({**entry, "schema": "an earlier schema"}))
    assert load_settings(tmp_path, environ={}).routing.top_k == 3 and len(validated) == 3
    assert json.loads(cache_path(path).read_text())["schema"] == entry["schema"]  # refreshed
    for damage in ({"routing": {"top_k": 3}}, {**entry["settings"], "extra": {}}, None):
        cache_path(path).write_text(json.dumps({**entry, "settings": damage}))
        assert load_settings(tmp_path, environ={}).routing.top_k == 3
    assert len(validated) == 6
    assert load_settings(tmp_path, environ={}).routing.top_k == 3 and len(validated) == 6


def test_the_schema_fingerprint_follows_the_declarations() -> None:
    import dataclasses

    from vy_nexus.config import RoutingSettings
    from vy_nexus.config_schema import schema_fingerprint

    @dataclasses.dataclass
    class Narrower(RoutingSettings):
        top_k: int = dataclasses.field(default=1, metadata={"constraints": {"ge": 1, "le": 8}})

    assert schema_fingerprint(Settings) == schema_fingerprint(Settings)
    assert schema_fingerprint(Narrower) != schema_fingerprint(RoutingSettings)


def test_a_validation_error_is_the_same_with_a_cache_or_without(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("routing:\n  top_k: 2\n")
    load_settings(tmp_path, environ={})
    path.write_text("routing:\n  top_k: 0\n  nope: 1\n")
    expected = (
        f"invalid configuration in {path}: key 'routing.top_k': Input should be greater than or equal to 1 (got 0); "
        "unknown key 'routing.nope'"
    )
    for _ in range(2):
        with pytest.raises(ConfigError) as info:
            load_settings(tmp_path, environ={})
        assert str(info.value) == expected


def test_a_bad_file_value_is_named_on_either_path(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("routing:\n  top_k: 0\n")
    for environ in ({}, {"VY_NEXUS_LOGGING__LEVEL": "debug"}):
        with pytest.raises(ConfigError, match=r"config\.yaml: key 'routing\.top_k'"):
            load_settings(tmp_path, environ=environ)


def test_validate_settings_names_each_bad_key_and_the_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        validate_settings({"routing": {"top_k": 0, "nope": 1}, "executor": {"broker_url": "http://x"}}, tmp_path)
    assert str(info.value) == (
        "invalid configuration in the arguments: "
        "key 'routing.top_k': Input should be greater than or equal to 1 (got 0); unknown key 'routing.nope'; "
        "key 'executor.broker_url': Value error, must start with redis://, rediss://, amqp:// or amqps:// "
        "(got 'http://x')"
    )
    with pytest.raises(ConfigError, match=r"^invalid configuration in there: key 'routing.strategy'"):
        validate_settings({"routing": {"strategy": "psychic"}}, tmp_path, source="there")


def test_the_defaults_are_valid(tmp_path: Path) -> None:
    """An absent or empty file gives the defaults without validating them: they must pass validation."""
    assert validate_settings({}, tmp_path) == Settings(home=tmp_path.resolve())


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("a: [unclosed", "is not valid YAML"),
        ("[1, 2]", "must hold a mapping of sections"),
        ("home: /elsewhere\n", "unknown key 'home'"),
        ("routing: 3\n", "'routing' must be a section, found int"),
    ],
)
def test_configure_refuses_a_broken_file(home: Path, content: str, problem: str) -> None:
    (home / "config.yaml").write_text(content)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        set_config_value(home, "routing.top_k", "2")
    assert (home / "config.yaml").read_text() == content


def test_prepare_config_edit_writes_nothing_and_takes_typed_values(home: Path) -> None:
    edit = prepare_config_edit(home, "file_system.allowed_paths", ["data", "/srv"])
    assert edit.value == ["data", "/srv"] and "allowed_paths" in edit.text
    assert not (home / "config.yaml").exists()
    assert prepare_config_edit(home, "routing.cache", {"ttl_seconds": 5}).value["ttl_seconds"] == 5


def test_an_unchanged_config_file_is_read_without_pyyaml(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("routing:\n  strategy: keyword\n")
    load_settings(tmp_path, environ={})  # parses, and caches the parse
    seen = in_fresh_process(
        tmp_path,
        "seen = {'strategy': load_settings(home, environ={}).routing.strategy, 'yaml': 'yaml' in sys.modules}",
    )
    assert seen == {"strategy": "keyword", "yaml": False}


def test_the_parse_cache_answers_only_for_the_exact_text(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("routing:\n  top_k: 2\n")
    assert load_settings(tmp_path, environ={}).routing.top_k == 2
    config.write_text("routing:\n  top_k: 3\n")  # same size, maybe the same mtime: the text decides
    assert load_settings(tmp_path, environ={}).routing.top_k == 3
    config.write_text("routing:\n  top_k: 0\n")
    with pytest.raises(ConfigError, match="top_k"):
        load_settings(tmp_path, environ={})


def test_a_damaged_parse_cache_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    from vy_nexus.config_parse_cache import cache_path

    config = tmp_path / "config.yaml"
    config.write_text("routing:\n  top_k: 4\n")
    cache = cache_path(config)
    cache.parent.mkdir()
    for damage in (b"\xff\xfe not json", b'{"text": 1}', b"[]"):
        cache.write_bytes(damage)
        assert load_settings(tmp_path, environ={}).routing.top_k == 4
        assert json.loads(cache.read_text())["value"] == {"routing": {"top_k": 4}}


def test_values_json_cannot_hold_are_never_cached(tmp_path: Path) -> None:
    from vy_nexus.config_parse_cache import cache_path

    config = tmp_path / "config.yaml"
    config.write_text("alerts:\n  1: 2\n")  # an integer key: JSON would make it "1"
    with pytest.raises(ConfigError):
        load_settings(tmp_path, environ={})
    assert not cache_path(config).exists()


def test_a_home_that_cannot_hold_the_cache_still_loads(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("routing:\n  top_k: 5\n")
    (tmp_path / "cache").write_text("a file where the cache directory would be")
    assert load_settings(tmp_path, environ={}).routing.top_k == 5


def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path: Path) -> None:
    """PyYAML alone keeps the last of two `routing:` blocks and silently drops what the first one set."""
    (tmp_path / "config.yaml").write_text(
        "routing:\n  top_k: 2\nlogging:\n  level: debug\nrouting:\n  strategy: keyword\n"
    )
    with pytest.raises(ConfigError, match=r"found the key 'routing' twice \(first on line 1\)") as raised:
        load_settings(tmp_path, environ={})
    assert "line 5" in str(raised.value)
    (tmp_path / "config.yaml").write_text("routing:\n  top_k: 2\n  top_k: 3\n")
    with pytest.raises(ConfigError, match="'top_k' twice"):
        load_settings(tmp_path, environ={})


def test_a_parse_cached_by_an_earlier_reader_is_not_trusted(tmp_path: Path) -> None:
    """An earlier vy-nexus cached the parse of a file with a repeated key (last one wins); the new reader decides."""
    from vy_nexus.config_parse_cache import cache_path

    config = tmp_path / "config.yaml"
    text = "routing:\n  top_k: 2\nrouting:\n  top_k: 3\n"
    config.write_text(text)
    cache_path(config).parent.mkdir()
    cache_path(config).write_text(json.dumps({"text": text, "value": {"routing": {"top_k": 3}}}))
    with pytest.raises(ConfigError, match="twice"):
        load_settings(tmp_path, environ={})


def test_concurrent_changes_of_different_keys_are_all_kept(tmp_path: Path) -> None:
    """Without a lock around read-change-write, the last writer erased the other writers' keys."""
    import threading

    keys = ["routing.top_k", "governance.max_retries", "executor.max_retries", "metrics.retention_days"]

    def change(key: str) -> None:
        for value in range(1, 5):
            set_config_value(tmp_path, key, str(value))

    threads = [threading.Thread(target=change, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settings = load_settings(tmp_path, environ={})
    assert [get_key(settings, key) for key in keys] == [4, 4, 4, 4]


def test_true_or_false_for_a_number_key_is_refused_not_read_as_one_or_zero(tmp_path: Path) -> None:
    # Before: `configure governance.max_concurrent_tasks true` stored 1 (pydantic reads a bool as a number).
    with pytest.raises(ConfigError, match=r"governance.max_concurrent_tasks': Value error, must be a number, not true"):
        validate_settings({"governance": {"max_concurrent_tasks": True}}, tmp_path)
    with pytest.raises(ConfigError, match="must be a number, not false"):
        validate_settings({"routing": {"cache": {"ttl_seconds": False}}}, tmp_path)
    assert validate_settings({"governance": {"max_concurrent_tasks": 7}}, tmp_path).governance.max_concurrent_tasks == 7


def test_a_blank_model_name_is_refused() -> None:
    # Before: accepted, and an Ollama server was then said to break the protocol.
    with pytest.raises(ConfigError, match=r"reasoning_core\.model': Value error, must name a model, not be blank"):
        validate_settings({"reasoning_core": {"provider": "ollama", "model": " "}}, Path("/tmp"))
