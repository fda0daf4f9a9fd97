"""Option objects whose command-line flags are their dataclass fields (vLLM's `from_cli_args` style).

A field declared with `cli_field(...)` carries its flag, help text and argparse group; `add_cli_args`
turns every such field of a dataclass into one flag (through `env_flag` where the field says so) and
`from_cli_args` builds the object back from the parsed namespace. So an option is written once: its
name, default, type and help live on the field, and the flags, the object and the conversion between
them are derived.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any

from videophy_bench.common.settings import env_flag

META_KEY = "cli"
_UNSET = object()  # dataclasses.MISSING cannot be a default of a dataclass field


@dataclass(frozen=True)
class Flag:
    """How one field appears on the command line."""

    flag: str  # e.g. "--item-deadline-s"
    help: str
    group: str  # argparse group title ("" = the parser itself)
    type: Callable[[str], Any] | None = None  # argparse `type` (None: str, or a store_true flag)
    store_true: bool = False
    env: bool = False  # also read VIDEOPHY_<FLAG> (videophy_bench.common.settings.env_flag)
    required: bool = False
    metavar: str | None = None
    choices: tuple[Any, ...] | None = None
    # The flag's value -> the field's value (e.g. "a,b" -> ["a", "b"]); identity when None.
    convert: Callable[[Any], Any] | None = None
    cli_default: Any = _UNSET  # the flag's default when it differs from the field's (raw form)
    # The namespace attribute when not the field's name (objects sharing a parser: EndpointSettings.model
    # is --llm-model, beside run's --model).
    dest: str | None = None


def cli_field(flag: str, help: str, group: str = "", *, default: Any = MISSING,
              default_factory: Any = MISSING, **kwargs: Any) -> Any:
    """A dataclass field with a command-line flag; `kwargs` are `Flag` attributes."""
    meta = {META_KEY: Flag(flag, help, group, **kwargs)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    if default is MISSING:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def cli_fields(cls: type) -> list[tuple[dataclasses.Field, Flag]]:
    return [(f, f.metadata[META_KEY]) for f in dataclasses.fields(cls) if META_KEY in f.metadata]


def _flag_default(f: dataclasses.Field, flag: Flag) -> Any:
    if flag.cli_default is not _UNSET:
        return flag.cli_default
    if f.default is not MISSING:
        return f.default
    return None


def add_cli_args(cls: type, parser: argparse.ArgumentParser,
                 groups: dict[str, Any] | None = None) -> dict[str, Any]:
    """Add a flag for every `cli_field` of `cls`, grouped by title; returns the groups by title (pass it
    on to add another class's flags to the same groups)."""
    groups = {} if groups is None else groups
    for f, flag in cli_fields(cls):
        if flag.group and flag.group not in groups:
            groups[flag.group] = parser.add_argument_group(flag.group)
        target = groups[flag.group] if flag.group else parser
        default = _flag_default(f, flag)
        kwargs: dict[str, Any] = {"dest": flag.dest or f.name}
        if not flag.store_true:  # the flag's own name, not the field's (--seed N, not RUN_SEED)
            kwargs["metavar"] = flag.metavar or flag.flag.lstrip("-").replace("-", "_").upper()
        if flag.choices is not None:
            kwargs["choices"] = list(flag.choices)
        if flag.store_true:
            kwargs["action"] = "store_true"
        elif flag.type is not None:
            kwargs["type"] = flag.type
        if flag.required:
            kwargs["required"] = True
        if flag.env:
            env_flag(target, flag.flag, default=default, help=flag.help, **kwargs)
        else:
            target.add_argument(flag.flag, default=default, help=flag.help, **kwargs)
    return groups


def cli_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The `cli_field` values of `cls` from a parsed namespace, converted to the fields' types."""
    out = {}
    for f, flag in cli_fields(cls):
        value = getattr(args, flag.dest or f.name)
        out[f.name] = flag.convert(value) if flag.convert is not None else value
    return out
