"""The one argument-parser class of every command: no abbreviations, and a usage error in one line.

argparse's default answer to a bad option is the whole usage text (20+ lines for `serve generator`)
followed by the error; a user who mistyped one flag needs the error and where help is.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


class ShowDefaults:
    """Help formatter mixin: every option's help ends with its default, unless the help already
    says it (`%(default)s` or the word "default") or there is none to show (None, False, "")."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if not text or text == argparse.SUPPRESS or "default" in text.lower():
            return text
        if action.default in (None, False, "", argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        return f"{text} (default: %(default)s)"


class DefaultsHelpFormatter(ShowDefaults, argparse.HelpFormatter):
    """The help formatter of every `Parser`."""


class RawDescriptionDefaultsHelpFormatter(ShowDefaults, argparse.RawDescriptionHelpFormatter):
    """For a parser whose description is laid out by hand (the top-level `videophy-bench`)."""


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with `allow_abbrev=False`, one-line usage errors (exit code 2) and
    help that shows every default (`DefaultsHelpFormatter`). Subcommand parsers made by
    `add_subparsers().add_parser` are of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class VersionAction(argparse.Action):
    """`--version`: print `videophy_bench.common.version.version_line()` and exit 0 (git is asked only
    when the flag is given)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the version (and git commit, from a checkout) and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from videophy_bench.common.version import version_line

        print(version_line())  # stdout, like argparse's own "version" action
        parser.exit(0)


def port(value: str) -> int:
    """A TCP port number (0: any free one), as an argparse `type`."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0..65535, got {value!r}")
    return number
