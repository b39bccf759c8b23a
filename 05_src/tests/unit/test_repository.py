"""Repository hygiene: notebooks without outputs, imports that are declared, links that resolve."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import pytest

from mlsd.config import repo_root

ROOT = repo_root()
SKIP_PARTS = {".venv", ".git", "node_modules", "build", "data", "logs", ".pytest_cache", ".ruff_cache"}


def tracked(pattern: str) -> list[Path]:
    return sorted(p for p in ROOT.rglob(pattern) if not SKIP_PARTS & set(p.relative_to(ROOT).parts))


NOTEBOOKS = tracked("*.ipynb")
MARKDOWN = tracked("*.md")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, f"cells {dirty} carry outputs: strip them (pre-commit runs nbstripout)"


def _declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = project["project"]["dependencies"]
    names += [
        d for group in project.get("dependency-groups", {}).values() for d in group if isinstance(d, str)
    ]
    return {re.split(r"[\[<>=!~; ]", n, maxsplit=1)[0].lower().replace("_", "-") for n in names}


def _imported_modules(source: str) -> set[str]:
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def undeclared_imports(modules: set[str], declared: set[str]) -> set[str]:
    """Modules that are neither the standard library, mlsd, nor provided by a declared distribution."""
    providers = metadata.packages_distributions()
    missing = set()
    for module in modules:
        if module in sys.stdlib_module_names or module == "mlsd":
            continue
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not dists & declared:
            missing.add(module)
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_imports_are_declared_dependencies(path):
    nb = nbformat.read(path, as_version=4)
    modules = set().union(*(_imported_modules(c.source) for c in nb.cells if c.cell_type == "code"))
    assert not undeclared_imports(modules, _declared_distributions())


def test_the_import_check_catches_an_undeclared_package():
    declared = _declared_distributions()
    assert undeclared_imports({"pandas", "json", "mlsd"}, declared) == set()
    assert undeclared_imports({"pluggy_not_a_dependency_xyz"}, declared) == {"pluggy_not_a_dependency_xyz"}
    assert "sklearn" not in undeclared_imports({"sklearn"}, declared)


LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)|<img[^>]+src="([^"]+)"')


def relative_links(text: str) -> list[str]:
    """Link targets that point into the repository (not URLs, not pure anchors)."""
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def _documents() -> list[tuple[Path, str]]:
    docs = [(p, p.read_text(encoding="utf-8")) for p in MARKDOWN]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        docs.append((path, "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")))
    return docs


@pytest.mark.parametrize(
    ("path", "text"), _documents(), ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else ""
)
def test_relative_links_resolve(path, text):
    # Links inside code blocks are examples, not links.
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    broken = [t for t in relative_links(prose) if not (path.parent / t.split("#")[0]).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to missing {broken}"


def test_the_link_check_sees_relative_links_only():
    text = "[a](SETUP.md) [b](https://x.org) [c](#top) ![d](img/x.png) [e](05_src/mlsd/db.py#L3)"
    assert relative_links(text) == ["SETUP.md", "img/x.png", "05_src/mlsd/db.py#L3"]
