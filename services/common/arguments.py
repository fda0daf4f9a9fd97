"""The one argument-parser class of every command: no abbreviations, and a usage error in one line.

argparse's default answer to a bad option is the whole usage text (20+ lines for `serve generator`)
followed by the error; a user who mistyped one flag needs the error and where help is.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with `allow_abbrev=False` and one-line usage errors (exit code 2).
    Subcommand parsers made by `add_subparsers().add_parser` are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def port(value: str) -> int:
    """A TCP port number (0: any free one), as an argparse `type`."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0..65535, got {value!r}")
    return number
