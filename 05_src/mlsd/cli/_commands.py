"""How a module of ``mlsd.cli`` declares its commands: :class:`Commands`, :class:`Option`, :func:`lazy`.

A command is a handler function with its help text, an example and its options, all written
together, so an option sits next to the code that reads it::

    commands = Commands("db", "Start, inspect and stop the course database.", "uv run mlsd db status")

    @commands.command("reset", "Delete the embedded database's data.", "uv run mlsd db reset --yes")
    @Option("--yes", action="store_true", help="confirm that the local database may be deleted")
    def reset(args: argparse.Namespace) -> int:
        ...

``Commands()`` without a name holds top-level commands (``mlsd train``); with a name, the actions
of a group (``mlsd db up``). :mod:`mlsd.cli._main` turns every module's ``commands`` into the
argparse parser.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

Handler = Callable[[argparse.Namespace], "int | None"]

__all__ = ["Command", "Commands", "Option", "add_parser", "lazy", "options", "positive_int"]


class Option:
    """One ``add_argument`` call, kept until the parser is built; also a decorator for a handler.

    Examples
    --------
    >>> seed = Option("--seed", type=int, default=42, help="random seed")
    >>> parser = argparse.ArgumentParser()
    >>> seed.add_to(parser)
    >>> parser.parse_args(["--seed", "7"]).seed
    7
    """

    def __init__(self, *flags: str, **kwargs: Any):
        self.flags = flags
        self.kwargs = kwargs

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add this option to ``parser``."""
        parser.add_argument(*self.flags, **self.kwargs)

    def __call__(self, handler: Handler) -> Handler:
        # Decorators apply bottom-up: insert at the front so options keep their written order.
        handler.__dict__.setdefault("cli_options", []).insert(0, self)
        return handler


def options(*opts: Option) -> Callable[[Handler], Handler]:
    """A decorator adding several options at once: a set shared by commands (``--scale``, ``--seed``...)."""

    def decorate(handler: Handler) -> Handler:
        for opt in reversed(opts):
            opt(handler)
        return handler

    return decorate


@dataclass
class Command:
    """A registered command: name, help text, example, handler and its options."""

    name: str
    help: str
    example: str
    handler: Handler
    options: list[Option] = field(default_factory=list)


def add_parser(
    subparsers: argparse._SubParsersAction, name: str, help_text: str, example: str
) -> argparse.ArgumentParser:
    """A sub-command parser whose description is its help text and whose epilog is its example."""
    return subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


class Commands:
    """The commands of one ``mlsd.cli`` module: a group (``mlsd db ACTION``) or top-level commands.

    Parameters
    ----------
    group : str, optional
        The group's name (``"db"``); ``None`` for top-level commands (``mlsd train``).
    help_text, example : str, optional
        The group's help and example (required with ``group``).
    """

    def __init__(self, group: str | None = None, help_text: str = "", example: str = ""):
        if group and not (help_text and example):
            raise ValueError(f"The command group {group!r} needs help text and an example.")
        self.group = group
        self.help = help_text
        self.example = example
        self.commands: list[Command] = []

    def command(self, name: str, help_text: str, example: str) -> Callable[[Handler], Handler]:
        """Register the decorated handler as ``name``; put it above any :class:`Option` decorators."""

        def decorate(handler: Handler) -> Handler:
            self.commands.append(
                Command(name, help_text, example, handler, list(getattr(handler, "cli_options", [])))
            )
            return handler

        return decorate

    def register(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser | None:
        """Add these commands to ``subparsers``; return the group's parser (``None`` for top-level ones)."""
        target, group = subparsers, None
        if self.group:
            group = add_parser(subparsers, self.group, self.help, self.example)
            target = group.add_subparsers(dest=f"{self.group}_command", metavar="ACTION")
        for command in self.commands:
            parser = add_parser(target, command.name, command.help, command.example)
            for opt in command.options:
                opt.add_to(parser)
            parser.set_defaults(func=command.handler)
        return group


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero (``50_000`` allowed).

    Examples
    --------
    >>> positive_int("50_000")
    50000
    """
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return value


class _LazyModule(ModuleType):
    """A stand-in for a package module, imported on first attribute access."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def lazy(name: str) -> ModuleType:
    """The package module ``mlsd.<name>``, imported when a command first uses it.

    The command modules name the package modules they call at the top, like any import, but
    ``mlsd --help`` builds every command's parser: importing pandas, scikit-learn or MLflow
    for that would make it seconds slower. Each attribute access reads the real module, so
    a test that patches a package function is seen by the command.

    Examples
    --------
    >>> config = lazy("config")
    >>> config.get_settings.__module__
    'mlsd.config'
    """
    return _LazyModule(f"mlsd.{name}")
