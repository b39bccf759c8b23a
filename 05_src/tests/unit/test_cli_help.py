"""Every mlsd command has help text and an example."""

import argparse

from mlsd.cli import build_parser


def walk(parser: argparse.ArgumentParser, prefix: str = "mlsd"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"`{prefix} {name}` has no help text"
                yield from walk(sub, f"{prefix} {name}")


def test_every_command_has_help_and_an_example():
    commands = list(walk(build_parser()))
    assert len(commands) >= 8
    for name, parser in commands:
        assert parser.description, f"`{name}` has no description"
        assert parser.epilog and "example:" in parser.epilog, f"`{name}` has no example"
        example = parser.epilog.split("example:", 1)[1]
        assert "mlsd" in example, f"the example for `{name}` does not run mlsd"


def test_group_without_action_prints_help(capsys):
    from mlsd.cli import main

    assert main(["db"]) == 2
    assert "ACTION" in capsys.readouterr().out
