"""Prompt sets: the VideoPhy-2 test set, the bundled sample, or any CSV with a `caption` column.

A *prepared* prompt set is a UTF-8 CSV whose first columns are `prompt_id, caption,
upsampled_caption, action, is_hard, category` (then `rule` when present, then any other input
columns in input order). Its content hash is the sha256 of exactly those canonical bytes, so the
same prompts always give the same hash, whatever file or row order they came from.

Prompt ids (stable: the same input always gives the same ids):

1. a `prompt_id` column (a prepared set) or else an `id` column is used as is;
2. the VideoPhy-2 test set (the Hub dataset, or a local copy recognised by its `model_name` and
   `video_url` columns) is reduced to unique captions, which are sorted by code point and numbered
   `vp2-0000`, `vp2-0001`, ... (pinned by the dataset revision and the prompt-set hash);
3. any other CSV: `p-` + the first 12 hex digits of sha256(caption), so ids survive reordering and
   additions.

Ids must be safe file names (letters, digits, `.`, `_`, `-`): they name video folders.
Malformed input is refused with a `PromptSetError` naming the file, the row (line number) and the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from services.common import csvio

HUB_DATASET = "videophysics/videophy2_test"
HUB_FILENAME = "videophy2_test.csv"
# `videophy2` is the name the Kubernetes run-config uses; both select the Hub test set.
HUB_NAMES = {HUB_DATASET, "videophy2"}
SAMPLE_NAME = "sample"
SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "sample_prompts.csv"

CORE_COLUMNS = ("prompt_id", "caption", "upsampled_caption", "action", "is_hard", "category")
OPTIONAL_COLUMNS = ("rule",)
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}


class PromptSetError(ValueError):
    """The prompt input is malformed; the message names file, row and column."""


@dataclass(frozen=True)
class Prompt:
    prompt_id: str
    caption: str
    upsampled_caption: str = ""
    action: str = ""
    is_hard: bool | None = None
    category: str = ""
    rule: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def gen_prompt(self, upsampled: bool) -> str:
        """The text sent to the generator; the original caption when no upsampled one exists."""
        return (self.upsampled_caption or self.caption) if upsampled else self.caption


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[Prompt, ...]
    source: str
    revision: str = ""
    extra_columns: tuple[str, ...] = ()

    @property
    def has_rules(self) -> bool:
        return any(p.rule for p in self.prompts)

    def columns(self) -> list[str]:
        return [*CORE_COLUMNS, *(["rule"] if self.has_rules else []), *self.extra_columns]

    def to_csv_bytes(self) -> bytes:
        """The canonical serialisation the content hash is computed over."""
        cols = self.columns()
        rows = []
        for p in self.prompts:
            row = {
                "prompt_id": p.prompt_id,
                "caption": p.caption,
                "upsampled_caption": p.upsampled_caption,
                "action": p.action,
                "is_hard": "" if p.is_hard is None else str(p.is_hard),
                "category": p.category,
                "rule": p.rule,
                **p.extra,
            }
            rows.append([row.get(c, "") for c in cols])
        return csvio.csv_bytes(cols, rows)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_csv_bytes()).hexdigest()

    def write(self, path: str | Path) -> dict[str, object]:
        """Write the prepared CSV and `<path>.json` (hash, source, counts); returns that metadata."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        csvio.write_atomic(path, self.to_csv_bytes())
        meta = self.describe()
        Path(str(path) + ".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return meta

    def describe(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "source": self.source,
            "revision": self.revision,
            "n": len(self.prompts),
            "n_hard": sum(1 for p in self.prompts if p.is_hard),
            "has_rules": self.has_rules,
        }

    def select(
        self, *, ids: list[str] | None = None, hard_only: bool = False, limit: int | None = None
    ) -> list[Prompt]:
        """Prompts in set order: only `ids` (unknown ids refused), only hard ones, then the first `limit`."""
        chosen = list(self.prompts)
        if ids:
            known = {p.prompt_id for p in chosen}
            missing = [i for i in ids if i not in known]
            if missing:
                raise PromptSetError(f"{self.source}: unknown prompt ids: {', '.join(missing[:10])}")
            wanted = set(ids)
            chosen = [p for p in chosen if p.prompt_id in wanted]
        if hard_only:
            chosen = [p for p in chosen if p.is_hard]
        if limit is not None:
            chosen = chosen[: max(limit, 0)]
        return chosen


# -- reading ---------------------------------------------------------------------------------------
def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PromptSetError(
            f"{path}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row) pairs; values stripped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PromptSetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    reader = csv.reader(io.StringIO(_decode(path, data), newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise PromptSetError(f"{path}: empty file (expected a header with a 'caption' column)") from None
    except csv.Error as exc:
        raise PromptSetError(f"{path}: line 1: {exc}") from None
    seen: set[str] = set()
    for col in header:
        if col and col in seen:
            raise PromptSetError(f"{path}: line 1: column {col!r} appears twice in the header")
        seen.add(col)
    rows = []
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise PromptSetError(f"{path}: line {reader.line_num}: {exc}") from None
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            raise PromptSetError(
                f"{path}: line {reader.line_num}: {len(values)} fields but the header has {len(header)}"
            )
        rows.append((reader.line_num, {h: v.strip() for h, v in zip(header, values, strict=False) if h}))
    return [h for h in header if h], rows


def _parse_bool(path: Path, line: int, value: str) -> bool | None:
    v = value.strip().lower()
    if v == "" or v == "nan":
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise PromptSetError(
        f"{path}: line {line}: column 'is_hard': {value!r} is not a boolean (true/false/1/0)"
    )


def _caption_id(caption: str) -> str:
    return "p-" + hashlib.sha256(caption.encode("utf-8")).hexdigest()[:12]


def is_videophy2_test(header: list[str]) -> bool:
    return {"caption", "model_name", "video_url"} <= set(header)


def load_csv(path: str | Path, *, source: str | None = None, revision: str = "") -> PromptSet:
    """Read a prompt CSV (prepared, raw, or a copy of the VideoPhy-2 test CSV); see the module rules."""
    path = Path(path)
    header, rows = _read_rows(path)
    if "caption" not in header:
        raise PromptSetError(
            f"{path}: line 1: missing required column 'caption' (columns: {', '.join(header)})"
        )
    if is_videophy2_test(header):
        return _reduce_videophy2(path, rows, source or str(path), revision)
    id_col = "prompt_id" if "prompt_id" in header else ("id" if "id" in header else None)
    known = {*CORE_COLUMNS, *OPTIONAL_COLUMNS, "id"}
    extras = tuple(h for h in header if h not in known)
    prompts: list[Prompt] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        caption = row.get("caption", "")
        if not caption:
            raise PromptSetError(f"{path}: line {line}: column 'caption' is empty")
        if id_col:
            pid = row.get(id_col, "")
            if not pid:
                raise PromptSetError(f"{path}: line {line}: column {id_col!r} is empty")
            if not _ID_OK.fullmatch(pid):
                raise PromptSetError(
                    f"{path}: line {line}: column {id_col!r}: {pid!r} is not a safe id "
                    "(letters, digits, '.', '_', '-'; at most 128)"
                )
        else:
            pid = _caption_id(caption)
        if pid in first_line:
            what = (
                f"column {id_col!r}: duplicate id {pid!r}"
                if id_col
                else "column 'caption': duplicate caption"
            )
            raise PromptSetError(f"{path}: line {line}: {what} (first on line {first_line[pid]})")
        first_line[pid] = line
        prompts.append(
            Prompt(
                prompt_id=pid,
                caption=caption,
                upsampled_caption=row.get("upsampled_caption", ""),
                action=row.get("action", ""),
                is_hard=_parse_bool(path, line, row.get("is_hard", "")),
                category=row.get("category", ""),
                rule=row.get("rule", ""),
                extra={c: row.get(c, "") for c in extras},
            )
        )
    if not prompts:
        raise PromptSetError(f"{path}: no prompts (only a header)")
    return PromptSet(tuple(prompts), source or str(path), revision, extras)


def _reduce_videophy2(
    path: Path, rows: list[tuple[int, dict[str, str]]], source: str, revision: str
) -> PromptSet:
    """One prompt per unique caption; the first non-empty value of each column wins."""
    merged: dict[str, dict[str, str]] = {}
    hard_line: dict[str, int] = {}
    for line, row in rows:
        caption = row.get("caption", "")
        if not caption:
            raise PromptSetError(f"{path}: line {line}: column 'caption' is empty")
        slot = merged.setdefault(caption, {})
        for col in ("upsampled_caption", "action", "is_hard", "category"):
            value = row.get(col, "")
            if value.lower() != "nan" and value and not slot.get(col):
                slot[col] = value
                if col == "is_hard":
                    hard_line[caption] = line
    prompts = []
    for k, caption in enumerate(sorted(merged)):
        slot = merged[caption]
        prompts.append(
            Prompt(
                prompt_id=f"vp2-{k:04d}",
                caption=caption,
                upsampled_caption=slot.get("upsampled_caption", ""),
                action=slot.get("action", ""),
                is_hard=_parse_bool(path, hard_line.get(caption, 0), slot.get("is_hard", "")),
                category=slot.get("category", ""),
            )
        )
    return PromptSet(tuple(prompts), source, revision)


def download_videophy2(revision: str | None = None, cache_dir: str | None = None) -> tuple[Path, str]:
    """Fetch `videophy2_test.csv` from the Hub (or its cache); returns (path, resolved commit)."""
    from huggingface_hub import hf_hub_download

    local = Path(
        hf_hub_download(
            HUB_DATASET, HUB_FILENAME, repo_type="dataset", revision=revision, cache_dir=cache_dir
        )
    )
    # Cached files live in .../snapshots/<commit>/<file>: the commit pins what was read.
    parts = local.parts
    commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else (revision or "")
    return local, commit


def load_prompt_set(spec: str, *, revision: str | None = None, cache_dir: str | None = None) -> PromptSet:
    """`sample`, `videophy2` / `videophysics/videophy2_test` (Hub), or a CSV path."""
    if spec == SAMPLE_NAME:
        return load_csv(SAMPLE_PATH, source=SAMPLE_NAME)
    if spec in HUB_NAMES and not Path(spec).exists():
        path, commit = download_videophy2(revision, cache_dir)
        return load_csv(path, source=f"hf://datasets/{HUB_DATASET}", revision=commit)
    path = Path(spec)
    if not path.is_file():
        raise PromptSetError(f"{spec}: no such file (use a CSV path, '{SAMPLE_NAME}' or 'videophy2')")
    return load_csv(path)
