"""Expert-name normalisation and validation for create-expert."""

from __future__ import annotations

import pytest

from vy_nexus.errors import VyNexusError
from vy_nexus.scaffold.naming import (
    ScaffoldError,
    check_description,
    normalise_name,
    parse_capabilities,
    split_words,
)


@pytest.mark.parametrize(
    ("raw", "module", "expert_id", "class_name", "title"),
    [
        ("DataAnalysis", "data_analysis", "data-analysis", "DataAnalysisExpert", "Data Analysis"),
        ("data analysis", "data_analysis", "data-analysis", "DataAnalysisExpert", "Data Analysis"),
        ("data-analysis", "data_analysis", "data-analysis", "DataAnalysisExpert", "Data Analysis"),
        ("  data__analysis  ", "data_analysis", "data-analysis", "DataAnalysisExpert", "Data Analysis"),
        ("HTTPServer2", "http_server2", "http-server2", "HttpServer2Expert", "Http Server2"),
        ("weather", "weather", "weather", "WeatherExpert", "Weather"),
        ("SQL", "sql", "sql", "SqlExpert", "Sql"),
    ],
)
def test_every_spelling_of_a_name(raw: str, module: str, expert_id: str, class_name: str, title: str) -> None:
    name = normalise_name(raw)
    assert (name.module, name.expert_id, name.class_name, name.title) == (module, expert_id, class_name, title)
    assert name.module.isidentifier()
    assert name.class_name.isidentifier()


def test_split_words_handles_acronyms_and_separators() -> None:
    assert split_words("parseJSONFile") == ("parse", "json", "file")
    assert split_words("a-b_c d") == ("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("../x", "path parts"),
        ("x/y", "path parts"),
        ("x\\y", "path parts"),
        (".hidden", "path parts"),
        ("a..b", "path parts"),
        ("rm -rf; echo", r"shell metacharacters \(;\)"),
        ("$(whoami)", r"shell metacharacters \(\$ \( \)\)"),
        ("a|b", "shell metacharacters"),
        ("`id`", "shell metacharacters"),
        ("a&b", "shell metacharacters"),
        ("x>y", "shell metacharacters"),
        ("name'quote", "shell metacharacters"),
        ("tab\tname", "control characters"),
        ("café", "cannot be part of a Python identifier"),
        ("a@b", "cannot be part of a Python identifier"),
        ("a,b", "cannot be part of a Python identifier"),
        ("3D", "not a Python identifier"),
        ("2fast", "not a Python identifier"),
        ("-_-", "not a Python identifier"),
        ("class", "Python keyword 'class'"),
        ("Import", "Python keyword 'import'"),
        ("match", "Python keyword 'match'"),
        ("None", "Python keyword 'none'"),
        ("test", "reserve"),
        ("TestRunner", "reserve"),
        ("conftest", "reserve"),
        ("x" * 61, "at most 60"),
    ],
)
def test_bad_names_are_refused_with_a_clear_message(raw: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        normalise_name(raw)


def test_scaffold_error_is_a_user_error() -> None:
    assert issubclass(ScaffoldError, VyNexusError)
    assert ScaffoldError.exit_code == 2


def test_capabilities_are_lowercased_stripped_and_deduplicated() -> None:
    assert parse_capabilities(" CSV, json,,sql , csv, group by ") == ("csv", "json", "sql", "group by")
    assert parse_capabilities("c++,c#,node.js") == ("c++", "c#", "node.js")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "no capabilities"),
        (" , ,", "no capabilities"),
        ("csv,$(rm)", "invalid capability '\\$\\(rm\\)'"),
        ("-dash", "invalid capability"),
        ("ok," + "x" * 65, "invalid capability"),
        ("semi;colon", "invalid capability"),
    ],
)
def test_bad_capabilities_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        parse_capabilities(raw)


def test_descriptions_are_one_line_and_bounded() -> None:
    assert check_description("  Analyzes\n structured   data ") == "Analyzes structured data"
    with pytest.raises(ScaffoldError, match="control characters"):
        check_description("bell\x07")
    with pytest.raises(ScaffoldError, match="at most 500"):
        check_description("x" * 501)
