"""Docs that cannot go stale: every config key is documented."""

from __future__ import annotations

from pathlib import Path

from vy_nexus.config import Settings
from vy_nexus.config_schema import section_of, setting_fields

DOCS = Path(__file__).resolve().parents[2] / "docs"


def config_keys(cls: type, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for field in setting_fields(cls):
        section = section_of(field)
        if section is not None:
            keys.extend(config_keys(section, f"{prefix}{field.name}."))
        else:
            keys.append(prefix + field.name)
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


def readme_cli_lines() -> list[list[str]]:
    """Every ``vy-nexus ...`` command shown in the README's bash blocks, as argument lists (after the program)."""
    import re
    import shlex

    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].split(" < ", 1)[0].split(" | ", 1)[0].strip()
            words = shlex.split(line) if "vy-nexus" in line else []
            if "vy-nexus" in words:
                commands.append(words[words.index("vy-nexus") + 1 :])
    return commands


def test_readme_commands_and_options_exist() -> None:
    """Checked against the click command tree itself: rendering every command's help page took seconds."""
    import typer
    from typer._click import Context
    from typer.core import TyperGroup as Group

    from vy_nexus.interfaces.cli import app

    root = typer.main.get_command(app)
    global_options = {opt for param in root.params for opt in param.opts}
    commands = readme_cli_lines()
    assert len(commands) > 20
    for args in commands:
        while args and args[0] in global_options:  # `vy-nexus --server URL tasks list`: the global option's value
            args = args[1:] if args[0] == "--version" else args[2:]
        assert not global_options & {a.split("=", 1)[0] for a in args} - {"--help"}, (
            f"README puts a global option after the command (it goes before): vy-nexus {' '.join(args)}"
        )
        words = [w for w in args if not w.startswith("-")]
        command, path = root, []
        for word in words:  # the longest prefix of words that is a command
            sub = command.get_command(Context(command), word) if isinstance(command, Group) else None
            if sub is None:
                break
            command, path = sub, [*path, word]
        assert path or not args, f"README shows an unknown command: vy-nexus {' '.join(args)}"
        assert not (isinstance(command, Group) and len(words) > len(path)), (
            f"README shows an unknown subcommand: vy-nexus {' '.join(args)}"
        )
        options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for option in (a.split("=", 1)[0] for a in args if a.startswith("--")):
            if option in ("--help", "--version", "--"):
                continue
            assert option in options, f"README uses {option} but `vy-nexus {' '.join(path)}` has no such option"


def test_architecture_embedding_example_runs(capsys: object) -> None:
    import re

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    match = re.search(
        r"## Embedding vy-nexus in your async app.*?```python\n(.*?)```\n\nprints\n\n```\n(.*?)```", text, re.DOTALL
    )
    assert match, "architecture.md lost its embedding example"
    exec(compile(match.group(1), "architecture.md", "exec"), {})
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out == match.group(2)
