"""Prompt sets: the VideoPhy-2 test set, the bundled sample, or any CSV with a `caption` column.

A *prepared* prompt set is a UTF-8 CSV whose first columns are `prompt_id, caption,
upsampled_caption, action, is_hard, category` (then `rule` when present, then any other input
columns in input order). Its content hash is the sha256 of exactly those canonical bytes, in set
order. For the VideoPhy-2 test set the set order and every value are independent of the file's row
order (sorted captions; values resolved by vote), so a reordered copy gives the same hash. For any
other CSV the file's row order is the set order (it decides `--limit`) and is part of the hash.

Captions are compared through ONE function, `normalize_caption` (Unicode NFC, whitespace runs
collapsed to one space, stripped): for duplicates, ids, sorting and joins. The stored `caption`,
`upsampled_caption` and `rule` are the file's text exactly (the official pipeline reads them as is
and the judge must see the same text); other values are stripped.

Prompt ids (stable: the same input always gives the same ids):

1. a `prompt_id` column (a prepared set) or else the user's own `id` column is used as is;
2. the VideoPhy-2 test set (the Hub dataset, or a local copy recognised by its `model_name` and
   `video_url` columns) is reduced to unique normalised captions, which are sorted by code point
   and numbered `vp2-0000`, `vp2-0001`, ... (pinned by the dataset revision and the prompt-set hash);
3. any other CSV: `p-` + the first 12 hex digits of sha256(normalised caption), so ids survive
   reordering and additions.

Ids must be safe file names (letters, digits, `.`, `_`, `-`): they name video folders.
Malformed input (a NUL, broken quoting, a text over the services' limits, ...) is refused with a
`PromptSetError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from videophy_bench.common import csvio
from videophy_bench.common.limits import MAX_JUDGE_TEXT_CHARS, MAX_PROMPT_CHARS, check_text

log = logging.getLogger(__name__)

HUB_DATASET = "videophysics/videophy2_test"
HUB_FILENAME = "videophy2_test.csv"
# `videophy2` is the name the Kubernetes run-config uses; both select the Hub test set.
HUB_NAMES = {HUB_DATASET, "videophy2"}
SAMPLE_NAME = "sample"
SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "sample_prompts.csv"

CORE_COLUMNS = ("prompt_id", "caption", "upsampled_caption", "action", "is_hard", "category")
OPTIONAL_COLUMNS = ("rule",)
# Sent to a model exactly as written (the judge reads caption and rule, the generator caption or
# upsampled_caption); every other value is stripped.
VERBATIM_COLUMNS = ("caption", "upsampled_caption", "rule")
# Checked at load so that a CSV a service would refuse is refused here, with its line.
TEXT_LIMITS = {
    "caption": min(MAX_JUDGE_TEXT_CHARS, MAX_PROMPT_CHARS),  # judged (SA) and generated from
    "upsampled_caption": MAX_PROMPT_CHARS,
    "rule": MAX_JUDGE_TEXT_CHARS,
}
# The VideoPhy-2 test set has one row per (caption, model); these are resolved per caption by vote.
VOTED_COLUMNS = ("caption", "upsampled_caption", "action", "is_hard", "category")
# The full test set's shape (HF dataset viewer; mission): 600 distinct captions, 197 actions, two
# categories, 180 hard; 10 captions have no upsampled caption (upstream issue #6). A prepared set
# that differs is reported; docs/orchestrator.md explains the 591 / 178 of published runs.
VIDEOPHY2_FIGURES = {"prompts": 600, "hard": 180, "actions": 197, "categories": 2, "with_upsampled": 590}
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}
_UNNAMED = "Unnamed: {}"  # pandas' name for a column without a header


class PromptSetError(ValueError):
    """The prompt input is malformed; the message names file, row and column."""


def normalize_caption(text: str) -> str:
    """The form in which captions (and voted values) are compared: NFC, whitespace runs collapsed
    to one space, stripped. Used for duplicates, ids, sorting and joins; never for what is sent."""
    return " ".join(unicodedata.normalize("NFC", text).split())


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
class Conflict:
    """The rows of one caption disagree on `column`; `chosen` won the vote. `values` ranks every
    distinct value: {"value", "rows", "models"}, winner first."""

    prompt_id: str
    caption: str
    column: str
    chosen: str
    values: tuple[dict[str, object], ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "prompt_id": self.prompt_id,
            "caption": self.caption,
            "column": self.column,
            "chosen": self.chosen,
            "values": list(self.values),
        }


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[Prompt, ...]
    source: str
    revision: str = ""
    extra_columns: tuple[str, ...] = ()
    # Set when reduced from the VideoPhy-2 test set: its disagreements and a check of its shape.
    conflicts: tuple[Conflict, ...] = ()
    videophy2: bool = False

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
        """Write the prepared CSV and `<path>.json` (hash, source, summary, conflicts); returns that."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        csvio.write_atomic(path, self.to_csv_bytes())
        meta = self.describe()
        Path(str(path) + ".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return meta

    def summary(self) -> dict[str, object]:
        """The shape of the set: counts of prompts, hard flags, actions, categories, upsampled captions."""
        ps = self.prompts
        per_category = Counter(p.category for p in ps if p.category)
        with_upsampled = sum(1 for p in ps if p.upsampled_caption.strip())
        return {
            "prompts": len(ps),
            "hard": sum(1 for p in ps if p.is_hard),
            "not_hard": sum(1 for p in ps if p.is_hard is False),
            "hard_unknown": sum(1 for p in ps if p.is_hard is None),
            "actions": len({normalize_caption(p.action) for p in ps if p.action}),
            "categories": len(per_category),
            "per_category": dict(sorted(per_category.items())),
            "with_upsampled": with_upsampled,
            "without_upsampled": len(ps) - with_upsampled,
            "with_rule": sum(1 for p in ps if p.rule),
        }

    def figure_warnings(self) -> list[str]:
        """How a set reduced from the VideoPhy-2 test set differs from the benchmark's figures."""
        if not self.videophy2:
            return []
        got = self.summary()
        return [f"{k} {got[k]} (benchmark: {v})" for k, v in VIDEOPHY2_FIGURES.items() if got[k] != v]

    def describe(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "source": self.source,
            "revision": self.revision,
            "n": len(self.prompts),
            "n_hard": sum(1 for p in self.prompts if p.is_hard),
            "has_rules": self.has_rules,
            "summary": self.summary(),
            "benchmark_figures": dict(VIDEOPHY2_FIGURES) if self.videophy2 else None,
            "warnings": self.figure_warnings(),
            "n_conflicts": len(self.conflicts),
            "conflicts": [c.as_dict() for c in self.conflicts],
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


def summary_text(meta: dict[str, object]) -> str:
    """One line for the console from `describe()`: the set's shape and its conflicts."""
    s = meta["summary"]
    assert isinstance(s, dict)
    cats = ", ".join(f"{k} {v}" for k, v in s["per_category"].items()) or "none"
    text = (
        f"{s['prompts']} prompts: {s['hard']} hard, {s['not_hard']} not hard, {s['hard_unknown']} "
        f"unflagged; {s['actions']} actions; {s['categories']} categories ({cats}); "
        f"{s['with_upsampled']} with an upsampled caption, {s['without_upsampled']} without"
    )
    if meta["n_conflicts"]:
        text += f"; {meta['n_conflicts']} cross-model conflicts resolved (listed in the .json)"
    return text


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


def _line_breaks(text: str) -> int:
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _bad_quote(text: str, start: int) -> tuple[int, int, str] | None:
    """(line, field index, problem) of the quoting error in the record that starts on line `start`;
    only called once the csv module has refused the file, to name where."""
    rec = "".join(io.StringIO(text, newline="").readlines()[start - 1 :])
    fld, line, i, at_field_start = 0, start, 0, True
    while i < len(rec):
        ch = rec[i]
        if at_field_start and ch == '"':
            open_line, i = line, i + 1
            while True:
                j = rec.find('"', i)
                if j < 0:
                    return open_line, fld, "a quoted field is never closed (unterminated '\"')"
                line += _line_breaks(rec[i:j])
                i = j + 2 if rec.startswith('""', j) else j + 1
                if i == j + 1:
                    break
            if i < len(rec) and rec[i] not in ",\r\n":
                return line, fld, f"{rec[i]!r} after a closing '\"' (expected ',' or a line end)"
            at_field_start = False
            continue
        if ch in "\r\n":
            return None
        at_field_start = ch == ","
        fld += ch == ","
        i += 1
    return None


def _csv_error(
    path: Path, text: str, start: int, header: list[str], exc: csv.Error, at: int
) -> PromptSetError:
    where = _bad_quote(text, start)
    if where is None:
        return PromptSetError(f"{path}: line {at}: {exc}")
    line, fld, problem = where
    col = header[fld] if fld < len(header) and header[fld] else f"#{fld + 1}"
    return PromptSetError(f"{path}: line {line}: column {col!r}: {problem}")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (first line of the row, row) pairs; values as written. Columns without a name
    are dropped when empty, else kept as `Unnamed: <index>` (pandas' name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PromptSetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    text = _decode(path, data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    header: list[str] = []
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(path, text, start, header, exc, reader.line_num) from None
        if not records:
            header = [h.strip() or _UNNAMED.format(k) for k, h in enumerate(values)]
        if not records or any(v.strip() for v in values):
            records.append((start, values))
        start = reader.line_num + 1
    if not records:
        raise PromptSetError(f"{path}: empty file (expected a header with a 'caption' column)")
    seen: set[str] = set()
    for col in header:
        if "\x00" in col:
            raise PromptSetError(f"{path}: line 1: the header contains a NUL character")
        if col in seen:
            raise PromptSetError(f"{path}: line 1: column {col!r} appears twice in the header")
        seen.add(col)
    rows = []
    for line, values in records[1:]:
        if len(values) > len(header):
            raise PromptSetError(
                f"{path}: line {line}: {len(values)} fields but the header has {len(header)}"
            )
        row = dict(zip(header, values, strict=False))
        for col, value in row.items():
            if "\x00" in value:
                raise PromptSetError(f"{path}: line {line}: column {col!r} contains a NUL character")
        rows.append((line, row))
    unnamed = [(k, _UNNAMED.format(k)) for k, h in enumerate(records[0][1]) if not h.strip()]
    empty = {c for _, c in unnamed if not any(row.get(c, "").strip() for _, row in rows)}
    for k, c in unnamed:
        if c not in empty:
            log.info("%s: column %d has no name but holds values; kept as %r", path, k + 1, c)
    for _, row in rows:
        for c in empty:
            row.pop(c, None)
    return [h for h in header if h not in empty], rows


def _check_limits(path: Path, line: int, row: dict[str, str]) -> None:
    for col, limit in TEXT_LIMITS.items():
        reason = check_text(f"column {col!r}", row.get(col, ""), limit)
        if reason:
            raise PromptSetError(f"{path}: line {line}: {reason} (the services refuse longer texts)")


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
    return "p-" + hashlib.sha256(normalize_caption(caption).encode("utf-8")).hexdigest()[:12]


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
        ps = _reduce_videophy2(path, rows, source or str(path), revision)
        _log_reduction(ps)
        return ps
    id_col = "prompt_id" if "prompt_id" in header else ("id" if "id" in header else None)
    known = {*CORE_COLUMNS, *OPTIONAL_COLUMNS, "id"}
    extras = tuple(h for h in header if h not in known)
    prompts: list[Prompt] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        _check_limits(path, line, row)
        caption = row.get("caption", "")
        if not normalize_caption(caption):
            raise PromptSetError(f"{path}: line {line}: column 'caption' is empty")
        if id_col:
            pid = row.get(id_col, "").strip()
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
                else "column 'caption': duplicate caption (compared after normalising spaces)"
            )
            raise PromptSetError(f"{path}: line {line}: {what} (first on line {first_line[pid]})")
        first_line[pid] = line
        prompts.append(
            Prompt(
                prompt_id=pid,
                caption=caption,
                upsampled_caption=row.get("upsampled_caption", ""),
                action=row.get("action", "").strip(),
                is_hard=_parse_bool(path, line, row.get("is_hard", "")),
                category=row.get("category", "").strip(),
                rule=row.get("rule", ""),
                extra={c: row.get(c, "").strip() for c in extras},
            )
        )
    if not prompts:
        raise PromptSetError(f"{path}: no prompts (only a header)")
    return PromptSet(tuple(prompts), source or str(path), revision, extras)


# -- the VideoPhy-2 test set: one row per (caption, model) -----------------------------------------
def _vote(entries: list[tuple[str, str, str]]) -> tuple[str, list[dict[str, object]]]:
    """Resolve (key, spelling, model) entries without regard to their order: the key most rows
    give wins; ties go to a key already in normal form, then to the smallest key by code point.
    Within the winning key, the spelling most rows use (ties: the normal form, then the smallest).
    Returns the chosen spelling and every key ranked: {"value", "rows", "models"}."""
    by_key: dict[str, list[tuple[str, str]]] = {}
    for key, raw, model in entries:
        by_key.setdefault(key, []).append((raw, model))

    def spelling(key: str) -> str:
        counts = Counter(raw for raw, _ in by_key[key])
        return min(counts, key=lambda r: (-counts[r], normalize_caption(r) != r, r))

    ranked = sorted(by_key, key=lambda k: (-len(by_key[k]), normalize_caption(k) != k, k))
    values = [
        {"value": spelling(k), "rows": len(by_key[k]), "models": sorted({m for _, m in by_key[k]})}
        for k in ranked
    ]
    return spelling(ranked[0]), values


def _column_entries(
    path: Path, members: list[tuple[int, dict[str, str]]], col: str
) -> list[tuple[str, str, str]]:
    """(key, spelling, model) of every row of one caption that has a value in `col`."""
    out = []
    for line, row in members:
        raw, model = row.get(col, ""), row.get("model_name", "").strip()
        if col == "is_hard":
            flag = _parse_bool(path, line, raw)
            if flag is not None:
                out.append((str(flag), str(flag), model))
            continue
        if col not in VERBATIM_COLUMNS:
            raw = raw.strip()
        norm = normalize_caption(raw)
        if norm and norm.lower() != "nan":
            # A group shares one normalised caption: its spellings are what is voted on.
            out.append((raw if col == "caption" else norm, raw, model))
    return out


def _reduce_videophy2(
    path: Path, rows: list[tuple[int, dict[str, str]]], source: str, revision: str
) -> PromptSet:
    """One prompt per normalised caption; each column's value is voted by its rows (see `_vote`),
    empty cells abstain, and every disagreement is recorded as a `Conflict`."""
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, row in rows:
        _check_limits(path, line, row)
        key = normalize_caption(row.get("caption", ""))
        if not key:
            raise PromptSetError(f"{path}: line {line}: column 'caption' is empty")
        groups.setdefault(key, []).append((line, row))
    prompts, conflicts = [], []
    for k, key in enumerate(sorted(groups)):
        pid = f"vp2-{k:04d}"
        chosen: dict[str, str] = {}
        for col in VOTED_COLUMNS:
            entries = _column_entries(path, groups[key], col)
            if not entries:
                chosen[col] = ""
                continue
            chosen[col], values = _vote(entries)
            if len(values) > 1:
                conflicts.append(Conflict(pid, key, col, chosen[col], tuple(values)))
        prompts.append(
            Prompt(
                prompt_id=pid,
                caption=chosen["caption"],
                upsampled_caption=chosen["upsampled_caption"],
                action=chosen["action"],
                is_hard=None if not chosen["is_hard"] else chosen["is_hard"] == "True",
                category=chosen["category"],
            )
        )
    return PromptSet(tuple(prompts), source, revision, conflicts=tuple(conflicts), videophy2=True)


def _log_reduction(ps: PromptSet) -> None:
    """Counts on the console; the full list is in describe() (the prepared set's .json, the manifest)."""
    if ps.conflicts:
        per_col = Counter(c.column for c in ps.conflicts)
        log.warning(
            "%s: the models' rows disagree on %d values of %d captions (%s); each resolved by the "
            "majority of rows (ties: the smallest normalised value), all listed in the prompt-set "
            "manifest",
            ps.source,
            len(ps.conflicts),
            len({c.prompt_id for c in ps.conflicts}),
            ", ".join(f"{col} {n}" for col, n in sorted(per_col.items())),
        )
    warnings = ps.figure_warnings()
    if warnings:
        log.warning(
            "%s: the prepared set differs from the VideoPhy-2 test set's figures: %s",
            ps.source,
            "; ".join(warnings),
        )


def download_videophy2(revision: str | None = None, cache_dir: str | None = None) -> tuple[Path, str]:
    """Fetch `videophy2_test.csv` from the Hub (or its cache); returns (path, resolved commit).

    Raises HubUnavailable, in seconds, when the Hub does not answer and the cache lacks the file.
    """
    from huggingface_hub import hf_hub_download

    from videophy_bench.common import hub

    try:
        local = Path(
            hub.fetch(
                f"{HUB_DATASET}/{HUB_FILENAME}",
                hf_hub_download,
                repo_id=HUB_DATASET,
                filename=HUB_FILENAME,
                repo_type="dataset",
                revision=revision,
                cache_dir=cache_dir,
            )
        )
    except hub.HubUnavailable as exc:
        raise hub.HubUnavailable(
            f"{exc}; give a local copy of {HUB_FILENAME} (run --prompts PATH, prompts PATH, leaderboard "
            f"--test-csv PATH), {hub.WARM_CACHE_HINT}"
        ) from None
    # Cached files live in .../snapshots/<commit>/<file>: the commit pins what was read.
    parts = local.parts
    commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts else (revision or "")
    return local, commit


def load_prompt_set(spec: str, *, revision: str | None = None, cache_dir: str | None = None) -> PromptSet:
    """`sample`, `videophy2` / `videophysics/videophy2_test` (Hub), or a CSV path."""
    if spec == SAMPLE_NAME:
        return load_csv(SAMPLE_PATH, source=SAMPLE_NAME)
    if spec in HUB_NAMES and not Path(spec).exists():
        from videophy_bench.common.hub import HubUnavailable

        try:
            path, commit = download_videophy2(revision, cache_dir)
        except HubUnavailable as exc:
            raise PromptSetError(str(exc)) from None
        return load_csv(path, source=f"hf://datasets/{HUB_DATASET}", revision=commit)
    path = Path(spec)
    if not path.is_file():
        raise PromptSetError(f"{spec}: no such file (use a CSV path, '{SAMPLE_NAME}' or 'videophy2')")
    return load_csv(path)
