"""The ``mlsd`` command: a thin layer over the package.

One module per command group, each holding its commands' options next to their handlers:
:mod:`~mlsd.cli.db`, :mod:`~mlsd.cli.data`, :mod:`~mlsd.cli.course`, :mod:`~mlsd.cli.doctor`,
:mod:`~mlsd.cli.model` (``train``, ``score``, ``monitor``, ``serve``), :mod:`~mlsd.cli.mlflow`
and :mod:`~mlsd.cli.grade`. A handler parses its arguments, calls the package and prints; what
it prints goes through :mod:`mlsd.cli._output`. :mod:`mlsd.cli._commands` declares commands and
:mod:`mlsd.cli._main` assembles them. The package never imports this one.

Every command has help text with an example (``mlsd COMMAND --help``). Expected faults print a
message that says what to do next and exit 1; usage errors exit 2.
"""

from mlsd.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
