"""The shape of ``mlsd.cli``: a layer nothing imports, one module per group, every command documented."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import mlsd
from mlsd import cli
from mlsd.cli import _main
from mlsd.config import repo_root

PACKAGE = Path(mlsd.__file__).parent


def _imports_cli(tree: ast.AST) -> list[int]:
    """Line numbers where a module imports ``mlsd.cli`` (statically or by name through importlib)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            lines += [
                node.lineno for a in node.names if a.name == "mlsd.cli" or a.name.startswith("mlsd.cli.")
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {a.name for a in node.names}
            if (
                node.module == "mlsd.cli"
                or node.module.startswith("mlsd.cli.")
                or (node.module == "mlsd" and "cli" in names)
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            lines += [
                node.lineno
                for arg in node.args
                if isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and arg.value.startswith("mlsd.cli")
            ]
    return lines


def test_no_package_module_imports_the_cli():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "cli" in path.parents:
            continue
        offenders += [f"{path.relative_to(PACKAGE)}:{n}" for n in _imports_cli(ast.parse(path.read_text()))]
    assert offenders == [], (
        f"the package must not import mlsd.cli (it returns data; the CLI prints): {offenders}"
    )


def test_the_import_check_catches_each_form():
    for code in ("import mlsd.cli", "from mlsd.cli._output import print_table", "from mlsd import db, cli"):
        assert _imports_cli(ast.parse(code)) == [1], code
    assert _imports_cli(ast.parse("def f():\n    importlib.import_module('mlsd.cli')")) == [2]
    assert _imports_cli(ast.parse("from mlsd import client, db")) == []


def test_every_command_module_is_registered():
    modules = {p.stem for p in (PACKAGE / "cli").glob("*.py") if not p.stem.startswith("_")}
    registered = {m.__name__.rsplit(".", 1)[1] for m in _main.COMMAND_MODULES}
    assert modules == registered, (
        "list every command module of mlsd/cli/ in COMMAND_MODULES (mlsd/cli/_main.py)"
    )


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        return {prefix}
    return {
        leaf for name, sub in subparsers[0].choices.items() for leaf in _leaf_commands(sub, (*prefix, name))
    }


def _readme_commands(text: str) -> set[tuple[str, ...]]:
    """Commands in the README's command table: `uv run mlsd db up` / `status` -> (db, up), (db, status)."""
    section = text.split("## The `mlsd` package", 1)[1].split("\n## ", 1)[0]
    commands = set()
    for row in section.splitlines():
        first = row.split("|")[1] if row.startswith("|") else ""
        spans = re.findall(r"`([^`]+)`", first)
        if not spans or not spans[0].startswith("uv run mlsd "):
            continue
        words = []
        for word in spans[0].split()[3:]:
            if word.startswith(("-", "[")):
                break
            words.append(word)
        commands.add(tuple(words))
        commands |= {(*words[:-1], sibling) for sibling in spans[1:]}
    return commands


def test_the_readme_documents_every_command_and_no_other():
    documented = _readme_commands((repo_root() / "README.md").read_text(encoding="utf-8"))
    commands = _leaf_commands(cli.build_parser())
    assert commands - documented == set(), "add these commands to the README's command table"
    assert documented - commands == set(), "the README's command table lists commands that do not exist"


def test_the_readme_check_reads_siblings_and_options():
    table = (
        "## The `mlsd` package\n\n| command | what |\n|---|---|\n"
        "| `uv run mlsd db up` / `status` | x |\n| `uv run mlsd course run [--only N]` | y |\n"
        "| `uv run mlsd doctor` | z |\n\n## Licence\n| `uv run mlsd nothing` | |\n"
    )
    assert _readme_commands(table) == {("db", "up"), ("db", "status"), ("course", "run"), ("doctor",)}
