"""The report document model shared by every output format, and value formatting.

A :class:`Report` is an ordered list of :class:`Section` s, each an ordered list of blocks:
:class:`Text`, :class:`Table`, :class:`Figure`, :class:`VideoGallery` and :class:`VideoPairs`. Tables
hold raw values (fractions, floats, ints, strings); the HTML, Markdown and LaTeX renderers format them
with :func:`format_cell`, the CSV and JSON writers keep them raw. All numbers of all formats therefore
come from the same rows.

One number convention everywhere (:func:`format_value`): a share of items (joint, coverage, pass
rates, power) is a percentage with one decimal, a difference of shares is in percentage points (pp)
with one decimal, SA/PC means keep their 1-5 scale (two decimals) and VideoCon-Physics means their
P(yes) 0-1 scale (three decimals, as published). A table whose rows mix kinds (the paired metrics)
names each row's format in the row (:attr:`Column.row_fmt`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

MISSING = "—"


@dataclass
class Column:
    """A table column: ``key`` in the rows, a header ``label``, a ``fmt`` (see :func:`format_value`) and
    optionally ``ci`` = (low key, high key) rendered as ``value [low, high]`` in HTML and Markdown.
    ``row_fmt`` names a row key whose value, when present, replaces ``fmt`` for that row."""

    key: str
    label: str
    fmt: str = "text"
    ci: tuple[str, str] | None = None
    row_fmt: str | None = None

    def fmt_of(self, row: dict[str, Any]) -> str:
        return str(row.get(self.row_fmt) or self.fmt) if self.row_fmt else self.fmt


@dataclass
class Table:
    """A table; ``id`` is unique in a report and names its CSV file. ``collapsed`` folds it in HTML;
    ``hidden`` lists row keys exported to CSV/JSON (e.g. stable ids) but not displayed; ``latex``: also
    written as a booktabs ``latex/<id>.tex`` (the headline and comparison tables)."""

    id: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""
    collapsed: bool = False
    hidden: tuple[str, ...] = ()
    latex: bool = False

    def raw_keys(self) -> list[str]:
        """Row keys exported to CSV/JSON: hidden keys, then each column's key followed by its CI keys."""
        keys: list[str] = list(self.hidden)
        for col in self.columns:
            for key in (col.key, *(col.ci or ())):
                if key not in keys:
                    keys.append(key)
        return keys


@dataclass
class Text:
    """A paragraph of plain text; ``kind`` is ``info`` or ``warning``."""

    text: str
    kind: str = "info"


@dataclass
class Figure:
    """A matplotlib figure (see :mod:`plots`), drawn inline as SVG in HTML and written as
    ``figures/<id>.png`` and ``.pdf``; its numbers are also in the table named ``data_table``."""

    id: str
    title: str
    plot: MplFigure
    data_table: str = ""


@dataclass
class Video:
    """A video to show: ``path`` is an absolute file path (resolved to a link or data URI on writing)."""

    path: Path | None
    title: str
    caption: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class VideoGallery:
    id: str
    title: str
    videos: list[Video]


@dataclass
class VideoPair:
    """The videos of one prompt under condition A and condition B, shown side by side."""

    title: str
    caption: str
    a: Video
    b: Video


@dataclass
class VideoPairs:
    id: str
    title: str
    label_a: str
    label_b: str
    pairs: list[VideoPair]


Block = Text | Table | Figure | VideoGallery | VideoPairs


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    """``banner``: notices shown first, under the title (e.g. a run that is unfinished)."""

    title: str
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)
    banner: list[Text] = field(default_factory=list)

    def tables(self) -> list[Table]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Table)]

    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA."""
    result = pd.isna(value)
    return bool(result) if isinstance(result, bool | np.bool_) else False


def format_value(value: Any, fmt: str) -> str:
    """Format one value: ``pct`` (fraction as %, 1 decimal), ``pp`` (a difference of fractions in signed
    percentage points, 1 decimal), ``ppabs`` (unsigned pp), ``num2``/``num3`` (decimals),
    ``signed2``/``signed3`` (signed), ``int``, ``pvalue``, ``text``."""
    if is_missing(value):
        return MISSING
    if fmt == "pct":
        return f"{100 * float(value):.1f}%"
    if fmt == "pp":
        return f"{100 * float(value):+.1f} pp"
    if fmt == "ppabs":
        return f"{100 * float(value):.1f} pp"
    if fmt == "num2":
        return f"{float(value):.2f}"
    if fmt == "num3":
        return f"{float(value):.3f}"
    if fmt == "signed2":
        return f"{float(value):+.2f}"
    if fmt == "signed3":
        return f"{float(value):+.3f}"
    if fmt == "int":
        return str(round(float(value)))
    if fmt == "pvalue":
        return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _bound(value: Any, fmt: str) -> str:
    text = format_value(value, fmt)
    return text.removesuffix("%").removesuffix(" pp")


def format_cell(row: dict[str, Any], column: Column) -> str:
    """The display text of ``row`` under ``column`` (with its CI when the column has one)."""
    fmt = column.fmt_of(row)
    main = format_value(row.get(column.key), fmt)
    if column.ci is None:
        return main
    low, high = (row.get(k) for k in column.ci)
    if is_missing(low) or is_missing(high):
        return main
    return f"{main} [{_bound(low, fmt)}, {_bound(high, fmt)}]"


NUMERIC_FORMATS = frozenset({"pct", "pp", "ppabs", "num2", "num3", "signed2", "signed3", "int", "pvalue"})
