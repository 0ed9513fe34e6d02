"""Subcommands whose modules are imported only when one of them is chosen.

Most commands need torch, SQLAlchemy or OpenCV, which take seconds to import. The parser lists
every command by name and help line without them; the chosen command's module is imported and
adds its options (description, examples, arguments, handler) just before argparse parses the
rest of the line, so ``gaitid COMMAND --help`` shows them in full.
"""

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

RAW = argparse.RawDescriptionHelpFormatter


@dataclass(frozen=True)
class Command:
    """A command as ``--help`` lists it, and the function that defines the rest of it."""

    name: str
    help: str
    # "package.module:function"; the function takes the command's parser and adds the description,
    # the examples (epilog), the options and the handler.
    target: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        module, _, function = self.target.partition(":")
        configure: Callable[[argparse.ArgumentParser], None] = getattr(importlib.import_module(module), function)
        configure(parser)


class _LazySubcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """argparse's subcommands, each configured by its :class:`Command` when the command line names it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: dict[str, tuple[Command, argparse.ArgumentParser]] = {}

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Sequence[Any] | str | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, list)
        chosen = self.pending.pop(values[0], None)
        if chosen is not None:
            command, subparser = chosen
            command.configure(subparser)
        super().__call__(parser, namespace, values, option_string)


def add_commands(parser: argparse.ArgumentParser, commands: Sequence[Command], dest: str, metavar: str) -> None:
    """Give ``parser`` the required subcommands ``commands``, each configured only once chosen."""
    subcommands = parser.add_subparsers(dest=dest, metavar=metavar, required=True, action=_LazySubcommands)
    assert isinstance(subcommands, _LazySubcommands)
    for command in commands:
        subparser = subcommands.add_parser(command.name, help=command.help, formatter_class=RAW)
        subcommands.pending[command.name] = (command, subparser)
