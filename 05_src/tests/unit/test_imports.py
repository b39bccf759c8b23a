"""Import rules: which modules stay light, and no import cycles among ``mlsd``'s modules.

Imports go at the top of a module; a heavy library that a module's import must not load comes
through one small helper in that module (``_mlflow()``, ``_shap()``...). The table below says
which modules must import without which libraries, and why it matters for them.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlsd

PACKAGE = Path(mlsd.__file__).parent

DATA_STACK = ("numpy", "pandas", "scipy", "pyarrow", "sqlalchemy")
ML = ("sklearn", "mlflow", "skops", "shap", "matplotlib", "dask", "distributed")
NOTEBOOK_TOOLS = ("nbclient", "nbconvert")

MUST_STAY_LIGHT = {
    # `mlsd --help` builds every command's parser: the CLI loads the package only when a command runs
    "mlsd.cli": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS, "psycopg2", "requests", "dotenv"),
    # `mlsd db ...` and `mlsd doctor` answer in a moment; importing the package does no work
    "mlsd": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS, "psycopg2"),
    "mlsd.config": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS, "psycopg2"),
    "mlsd.db": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS),
    "mlsd.doctor": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS),
    "mlsd.logging": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS),
    # every session notebook starts with `from mlsd import course`; none of them runs notebooks
    "mlsd.notebooks": (*DATA_STACK, *ML, *NOTEBOOK_TOOLS),
    "mlsd.course": (*ML, *NOTEBOOK_TOOLS),
    # generating and loading the data needs no model
    "mlsd.data": (*ML, *NOTEBOOK_TOOLS),
    "mlsd.pipelines": (*ML, *NOTEBOOK_TOOLS),
    "mlsd.sampling": ML,
    "mlsd.labeling": ML,
    "mlsd.grading": ML,
    # tracking URIs, the registry's answers and `mlsd mlflow ui` need neither MLflow nor a model
    "mlsd.tracking": ML,
    # a client of the model server needs requests, not scikit-learn
    "mlsd.serving": ML,
    # these build scikit-learn models in every function; MLflow, SHAP, plots and Dask load on use
    "mlsd.training": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    "mlsd.features": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    "mlsd.evaluation": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    "mlsd.retraining": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    "mlsd.monitoring": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    "mlsd.explain": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    # group rates are counts; a model card reads MLflow only when asked for one
    "mlsd.fairness": ML,
    "mlsd.model_card": ML,
    "mlsd.privacy": ML,
    # the feedback-loop experiment clones and fits scikit-learn models
    "mlsd.experiments": ("mlflow", "skops", "shap", "matplotlib", "dask", "distributed"),
    # Dask is this module's subject; a cluster's client loads when a cluster starts
    "mlsd.pipelines.dask_layers": ("sklearn", "mlflow", "shap", "matplotlib", "distributed"),
}


def _loaded_after_import(module: str, libraries: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """In a fresh interpreter: the libraries among ``libraries``, and the mlsd modules, loaded by ``module``."""
    code = (
        f"import importlib, json, sys\nimportlib.import_module({module!r})\n"
        f"print(json.dumps([sorted(set({list(libraries)!r}) & set(sys.modules)), "
        "sorted(m for m in sys.modules if m == 'mlsd' or m.startswith('mlsd.'))]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, ours = json.loads(out.stdout)
    return heavy, ours


@pytest.mark.parametrize("module", sorted(MUST_STAY_LIGHT))
def test_module_imports_without_heavy_libraries(module):
    heavy, _ = _loaded_after_import(module, MUST_STAY_LIGHT[module])
    assert heavy == [], f"importing {module} loads {heavy}: load them through a helper, on first use"


def test_the_cli_loads_no_package_module_until_a_command_runs():
    _, ours = _loaded_after_import("mlsd.cli", ())
    outside = [m for m in ours if m not in ("mlsd", "mlsd.errors") and not m.startswith("mlsd.cli")]
    assert outside == [], f"mlsd.cli imports {outside} at start-up: use cli._commands.lazy"


def test_the_light_check_sees_a_heavy_import():
    heavy, _ = _loaded_after_import("mlsd.features", ("sklearn",))
    assert heavy == ["sklearn"]


# -- no cycles ----------------------------------------------------------------------------


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_names(root: Path) -> dict[str, Path]:
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its body (``TYPE_CHECKING`` blocks aside).

    ``from mlsd import db`` counts as importing ``mlsd.db``; ``from mlsd.data import TABLES`` as
    importing ``mlsd.data``.
    """
    names = _module_names(root)
    graph = {}
    for name, path in names.items():
        is_package = path.name == "__init__.py"
        found: set[str] = set()
        stack = [ast.parse(path.read_text(encoding="utf-8"))]
        while stack:
            node = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child):
                    stack.append(ast.Module(body=child.orelse, type_ignores=[]))  # the else branch runs
                    continue
                if isinstance(child, ast.Import):
                    found |= {a.name for a in child.names}
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        parts = name.split(".") if is_package else name.split(".")[:-1]
                        parts = parts[: len(parts) - child.level + 1]
                        base = ".".join([*parts, *([child.module] if child.module else [])])
                    found |= {
                        f"{base}.{a.name}" if f"{base}.{a.name}" in names else base for a in child.names
                    }
                stack.append(child)
        graph[name] = {m for m in found if m in names and m != name}
    return graph


def test_no_import_cycles_among_the_package_modules():
    try:
        order = list(graphlib.TopologicalSorter(import_graph(PACKAGE)).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")
    assert "mlsd.cli" in order and "mlsd.monitoring._db" in order


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from pkg.a import x\n"
    )
    (package / "c.py").write_text("from . import a\n")
    graph = import_graph(package)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(graph).static_order())
