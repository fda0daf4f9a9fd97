"""The one CSV writer and reader of the project: every CSV it writes round-trips any text.

Format (docs/results-schema.md, "CSV format"): RFC 4180 style, comma-separated, ``\\n`` line ends, a
field quoted (``"`` doubled inside) when it holds a comma, a quote, ``\\r`` or ``\\n``; everything else,
NUL and leading/trailing spaces included, is written verbatim. Python's ``csv`` module quotes ``\\n``
but not a lone ``\\r`` when the line end is ``\\n`` (pandas' ``to_csv`` neither), which readers then take
for a line break; rows are therefore formatted with a ``\\r\\n`` terminator, so both characters force
quoting, and the terminator is then written as ``\\n``. Plain text gives the same bytes as before.

Files are UTF-8. Text decoded from non-UTF-8 bytes with ``errors="surrogateescape"`` (lone surrogates
U+DC80..U+DCFF) is written back as the same bytes, so such a file reads back byte-exact with
``errors="surrogateescape"`` (pandas: ``encoding_errors="surrogateescape"``). Text that has no such
byte form (another lone surrogate, or escapes that would merge into a different character) is refused
with a ``CsvTextError`` naming the row and column, before anything is written: never a silent change.

An empty cell is a missing value (``None``/NaN are written as empty cells); the schemas give empty text
no other meaning. Read back with :func:`read_frame` (pandas) or :func:`read_rows` (``csv``): every cell
as text, only empty cells missing, so "NA", "nan" or "None" stay text.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videophy_bench.common.storage import FILE_MODE

if TYPE_CHECKING:
    import pandas as pd

ENCODING = "utf-8"
ERRORS = "surrogateescape"
# pandas.read_csv options that read our CSVs back verbatim (documented in docs/results-schema.md).
PANDAS_READ_OPTIONS: dict[str, Any] = {
    "dtype": str,
    "keep_default_na": False,
    "na_values": [""],
    "encoding": ENCODING,
    "encoding_errors": ERRORS,
}


class CsvTextError(ValueError):
    """A value cannot be written so that it reads back unchanged; the message names row and column."""


def cell(value: Any) -> str:
    """The text of one cell: missing (None, NaN) is empty, anything else its ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _line(writer: Any, buf: io.StringIO, fields: list[str]) -> str:
    buf.seek(0)
    buf.truncate()
    writer.writerow(fields)
    return buf.getvalue()[:-2] + "\n"  # the \r\n terminator only made \r and \n force quoting


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The CSV text of a header and rows (each a sequence of cells in column order)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    lines = [_line(writer, buf, [cell(c) for c in columns])]
    for n, row in enumerate(rows, start=1):
        fields = [cell(v) for v in row]
        if len(fields) != len(columns):
            raise CsvTextError(f"row {n}: {len(fields)} values for {len(columns)} columns")
        lines.append(_line(writer, buf, fields))
    return "".join(lines)


def encode(text: str, columns: Sequence[str] | None = None) -> bytes:
    """``text`` as file bytes (UTF-8, surrogate escapes as their bytes); refuses what would not read
    back as the same text."""
    try:
        data = text.encode(ENCODING, ERRORS)
        if data.decode(ENCODING, ERRORS) == text:
            return data
    except UnicodeEncodeError:
        pass
    raise CsvTextError(_first_bad_cell(text, columns)) from None


def _first_bad_cell(text: str, columns: Sequence[str] | None) -> str:
    for n, fields in enumerate(csv.reader(io.StringIO(text, newline=""))):
        for k, value in enumerate(fields):
            try:
                ok = value.encode(ENCODING, ERRORS).decode(ENCODING, ERRORS) == value
            except UnicodeEncodeError:
                ok = False
            if not ok:
                name = columns[k] if columns and k < len(columns) else f"#{k + 1}"
                bad = next((c for c in value if "\ud800" <= c <= "\udfff"), "?")
                return (
                    f"row {n}, column {name!r}: text holds a lone surrogate (U+{ord(bad):04X}) that "
                    "is not an undecodable input byte; it cannot be written as UTF-8 unchanged"
                )
    return "text cannot be written as UTF-8 unchanged"


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The file bytes of :func:`csv_text`."""
    return encode(csv_text(columns, rows), columns)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` at once: readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; other users of a shared volume read exports
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_csv(path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV atomically; nothing is written when a value cannot round-trip (``CsvTextError``)."""
    try:
        data = csv_bytes(columns, rows)
    except CsvTextError as exc:
        raise CsvTextError(f"{path}: {exc}") from None
    write_atomic(path, data)


def read_rows(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows with Python's ``csv`` module (fields of any length)."""
    csv.field_size_limit(sys.maxsize)  # the default 128 KiB limit would refuse a long raw answer
    with open(path, encoding=ENCODING, errors=ERRORS, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        return header, list(reader)


def read_frame(path: str | os.PathLike[str], **options: Any) -> pd.DataFrame:
    """A pandas frame of text cells, only empty cells missing (``options`` override the defaults)."""
    import pandas as pd

    return pd.read_csv(path, **{**PANDAS_READ_OPTIONS, **options})
