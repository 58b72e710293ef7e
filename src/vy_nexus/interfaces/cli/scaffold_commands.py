"""Scaffold commands: create-expert."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from vy_nexus.interfaces.cli.common import console, handle_errors, print_json, state
from vy_nexus.payloads import build_task

if TYPE_CHECKING:
    from vy_nexus.scaffold.create_expert import ScaffoldResult


def python_command() -> str:
    """How to start the interpreter running vy-nexus from a shell: ``python`` when that is the one on PATH (an
    activated venv), else its path. A bare ``python`` elsewhere is another interpreter, without vy-nexus. Symlinks
    are not followed: a venv's ``python`` links to the interpreter it was made from, but imports other packages."""
    on_path = shutil.which("python")
    if on_path is not None and Path(on_path).absolute() == Path(sys.executable).absolute():
        return "python"
    return shlex.quote(sys.executable)


def home_option(home: Path, given: str | None) -> str:
    """``--home DIR `` for the hints when the home was chosen on the command line: a plain ``vy-nexus`` (no
    ``--home``, the same ``$VY_NEXUS_HOME``) would look in another home and not find the expert."""
    if not given or given == os.environ.get("VY_NEXUS_HOME"):
        return ""
    return f"--home {shlex.quote(str(home))} "


def render_created(result: ScaffoldResult, routed_to: str | None = None, home_args: str = "") -> None:
    """``routed_to``: the expert the router picks for the example today (``None`` when not checked);
    ``home_args``: what the suggested ``vy-nexus`` commands need to find this home (``home_option``)."""
    spec = result.spec
    console.print(
        Text.assemble(("✓", "green"), " created expert ", (spec.name.expert_id, "bold"), f" ({spec.name.class_name})")
    )
    for planned in result.files:
        marker = " (overwritten)" if planned.path in result.overwritten else ""
        console.print(f"  {planned.kind:<6} {planned.path}{marker}", highlight=False)
    for expert_id, source in result.replaces.items():
        console.print(Text(f"! replaces '{expert_id}' from {source}", style="yellow"))
    console.print("next:", highlight=False)
    python = python_command()
    if importlib.util.find_spec("pytest") is None:
        console.print(
            f"  {python} -m pip install pytest    # the generated tests need it", highlight=False, soft_wrap=True
        )
    console.print(f"  {python} -m pytest {shlex.quote(str(result.test_path))}", highlight=False, soft_wrap=True)
    from vy_nexus.scaffold.create_expert import route_example

    example = shlex.quote(route_example(spec))
    if result.discovered_automatically and routed_to in (None, spec.name.expert_id):
        console.print(f"  vy-nexus {home_args}route {example}", highlight=False, soft_wrap=True)
    elif result.discovered_automatically:
        console.print(
            f"  vy-nexus {home_args}run {example} --expert {spec.name.expert_id}", highlight=False, soft_wrap=True
        )
        console.print(
            Text.assemble(
                ("note:", "yellow"),
                f" the router sends this example to '{routed_to}' today; add capabilities or examples that only"
                f" {spec.name.expert_id} has, or name it with --expert",
            )
        )
    else:
        console.print(
            Text.assemble(
                ("note:", "yellow"),
                f" {result.directory} is not the configured experts directory, so vy-nexus will not load this expert"
                " by itself; move it there or set experts.directory"
                f" (vy-nexus {home_args}configure experts.directory {shlex.quote(str(result.directory))})",
            )
        )


def register(app: typer.Typer) -> None:
    @app.command("create-expert")
    @handle_errors
    def create_expert_command(
        ctx: typer.Context,
        name: str = typer.Option(
            ...,
            "--name",
            help='Expert name in any case style ("DataAnalysis", "data analysis"). Example: --name DataAnalysis',
        ),
        capabilities: str = typer.Option(
            ...,
            "--capabilities",
            help='Comma-separated words/phrases the router matches. Example: --capabilities "csv,json,sql"',
        ),
        description: str | None = typer.Option(
            None,
            "--description",
            help='One line saying what the expert does. Example: --description "Analyzes structured data"',
        ),
        examples: Path | None = typer.Option(
            None,
            "--examples",
            help="File of sample requests: one per line, or a JSON list of strings. Example: --examples examples.txt",
        ),
        directory: Path | None = typer.Option(
            None,
            "--dir",
            help="Target directory (default: the experts directory, <home>/experts). Example: --dir ./experts",
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Overwrite existing files and replace an existing expert of the same name. Example: --force",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print what was created as JSON. Example: --json"),
    ) -> None:
        """Generate a new expert: its module, a pytest file that passes as generated, and a Markdown doc.

        Files go to the experts directory (<home>/experts, or --dir): NAME.py, tests/test_NAME.py and
        docs/experts/EXPERT-ID.md; vy-nexus discovers experts in <home>/experts on its next start. Nothing is
        written when any input is refused (bad name, clash with an existing expert, bad capability).

        Example: vy-nexus create-expert --name "DataCleaner" --capabilities "csv,dedupe" --description "Cleans tables"
        """
        cli_state = state(ctx)
        settings = cli_state.settings()
        from vy_nexus.scaffold.create_expert import create_expert, route_example  # loads the experts

        result = create_expert(
            settings,
            name=name,
            capabilities=capabilities,
            description=description,
            examples_file=examples,
            directory=directory,
            force=force,
        )
        if as_json:
            print_json(result.as_dict())
            return
        routed_to = None
        if result.discovered_automatically:  # check the hint before suggesting it: routing may prefer another
            system = cli_state.system(observe=False)
            routed_to = system.route(build_task(route_example(result.spec))).expert_ids[0]
        render_created(result, routed_to, home_option(settings.home, cli_state.home))
