"""Docs that cannot go stale: every config key is documented."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from vy_nexus.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        if name == "home":
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(config_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = [key for key in config_keys(Settings) if f"`{key}`" not in text]
    assert not missing, f"docs/configuration.md does not document: {missing}"


def test_readme_python_example_runs(capsys: object) -> None:
    import re

    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "['data-analysis']" in out and "'sum_units': 3" in out
