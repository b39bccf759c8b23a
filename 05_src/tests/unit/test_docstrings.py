"""The examples in the package's docstrings run and print what they show (doctests).

Each module's own docstrings (not what it re-exports) run in that module's namespace, with
doctest's ``ELLIPSIS`` as pytest sets it. An example that needs a database, MLflow or the
network is marked ``# doctest: +SKIP``. The same examples run with
``uv run pytest --doctest-modules 05_src/mlsd``.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import mlsd

PACKAGE = Path(mlsd.__file__).parent


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULES = _modules()


def _examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder().find(module, name) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in _examples(name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_the_examples_are_found():
    examples = [e for name in MODULES for t in _examples(name) for e in t.examples]
    run = [e for e in examples if not e.options.get(doctest.SKIP)]
    assert len(examples) >= 200 and len(run) >= 180, (len(examples), len(run))
