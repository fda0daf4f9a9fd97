"""Every CSV the project writes reads back exactly, by Python's csv module and by pandas (issue 11 item 7).

Covered writers: ``csvio.write_csv`` itself, ``results.csv`` and ``official/*.csv`` from a real ledger
(``export.export_run``), ``prompts.csv`` (``PromptSet.write``) and the report tables. The judge CLI's
output is covered in tests/evaluator/test_judge_cli.py.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from nasty_text import nasty_strings

from videophy_bench.common import csvio
from videophy_bench.orchestrator.analysis.document import Column, Table
from videophy_bench.orchestrator.analysis.export import write_table_csv
from videophy_bench.orchestrator.analysis.loading import load_results
from videophy_bench.orchestrator.export import export_run
from videophy_bench.orchestrator.items import WorkItem
from videophy_bench.orchestrator.ledger import Ledger, StoredAnswer, rows_with_answers
from videophy_bench.orchestrator.prompts import Prompt, PromptSet


def _assert_reads_back(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    """``rows`` (cells as text, "" for missing) come back from both readers, byte-exact."""
    header, got = csvio.read_rows(path)
    assert header == columns
    assert len(got) == len(rows)
    for n, (want, have) in enumerate(zip(rows, got, strict=True)):
        assert have == want, f"csv module, row {n}"
    frame = csvio.read_frame(path)
    assert list(frame.columns) == [c or f"Unnamed: {k}" for k, c in enumerate(columns)]
    for n, want in enumerate(rows):
        have = ["" if pd.isna(v) else v for v in frame.iloc[n].tolist()]
        assert have == want, f"pandas, row {n}"


def test_any_text_round_trips_through_both_readers(tmp_path: Path) -> None:
    texts = nasty_strings(400)
    columns = ["", "caption", "videopath", "score"]
    rows = [[str(k), t, texts[-1 - k], ""] for k, t in enumerate(texts)]
    path = tmp_path / "out.csv"
    csvio.write_csv(path, columns, rows)
    _assert_reads_back(path, columns, rows)
    # Undecodable input bytes are written back as the same bytes.
    assert b"\xff\xfe bytes \xff\xfe" in path.read_bytes()
    assert path.read_bytes().startswith(b",caption,videopath,score\n")  # the official header, unquoted
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left


def test_plain_text_gives_the_stdlib_bytes() -> None:
    """Text without \\r is written exactly as csv.writer does (prompt-set hashes stay what they were)."""
    rows = [[t, "x"] for t in nasty_strings(200, seed=3) if "\r" not in t]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    assert csvio.csv_text(["a", "b"], rows) == buf.getvalue()
    assert csvio.csv_text(["a"], [[""], [None], [float("nan")]]) == 'a\n""\n""\n""\n'  # never a blank line


@pytest.mark.parametrize(
    ("value", "code"),
    [("x \ud800", "U+D800"), ("\udcc3\udca9", "U+DCC3")],  # no byte form; escapes that would merge into é
)
def test_text_that_cannot_round_trip_is_refused_and_nothing_is_written(
    tmp_path: Path, value: str, code: str
) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old,content\n")
    with pytest.raises(csvio.CsvTextError) as err:
        csvio.write_csv(path, ["a", "caption"], [["ok", "fine"], ["ok", value]])
    assert "row 2, column 'caption'" in str(err.value) and code in str(err.value)
    assert path.read_text() == "old,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def _nasty_ledger(run_dir: Path, texts: list[str]) -> Ledger:
    led = Ledger(run_dir)
    for k, text in enumerate(texts):
        item = WorkItem(f"p{k:04d}", k, text, texts[-1 - k], "cfg", rule=text[:50])
        led.add_items([item])
        judged = k % 3 != 0
        led.record_answers(
            item.request_id,
            [
                StoredAnswer("sa", float(k % 6) if judged else None,  # 0.0 is a score, None is missing
                             "parsed" if judged else None, text if judged else None),
                StoredAnswer("pc", 4.0 if judged else None, "parsed" if judged else None, texts[k // 2]),
                StoredAnswer("rule", 1.0 if judged else None, "parsed" if judged else None, ""),
            ],
            replica="r",
            seconds=1.0,
            state="judged" if judged else "failed",
            video_uri=f"videos/p{k:04d}.mp4",
            error=None if judged else text,
        )
    return led


def test_results_and_official_exports_round_trip_raw_answers(tmp_path: Path) -> None:
    # The ledger (SQLite) stores UTF-8 only, so undecodable bytes cannot reach it.
    texts = nasty_strings(60, seed=1, undecodable=False)
    led = _nasty_ledger(tmp_path, texts)
    rows = rows_with_answers(led.conn, led.rows())
    export_run(tmp_path, led.conn)
    header, written = csvio.read_rows(tmp_path / "results.csv")
    assert len(written) == len(texts)
    by_id = {r["prompt_id"]: r for r in rows}
    for values in written:
        got = dict(zip(header, values, strict=True))
        row = by_id[got["prompt_id"]]
        for col in ("caption", "gen_prompt", "sa_raw", "pc_raw", "rule_raw", "error"):
            assert got[col] == (row[col] or ""), col
        assert got["sa"] == ("" if row["sa"] is None else str(row["sa"]))
    expected = [[c if c is not None else "" for c in v] for v in written]
    _assert_reads_back(tmp_path / "results.csv", header, expected)
    # The project's own reader: raw answers verbatim ("NA" stays text), a 0.0 score is not missing.
    frame = load_results(tmp_path / "results.csv").set_index("prompt_id")
    for r in rows:
        got = frame.loc[r["prompt_id"]]
        assert (got["sa_raw"] if isinstance(got["sa_raw"], str) else "") == (r["sa_raw"] or "")
        assert pd.isna(got["sa"]) if r["sa"] is None else got["sa"] == r["sa"]
    # official/output_sa.csv: the official header, captions verbatim.
    header, official = csvio.read_rows(tmp_path / "official" / "output_sa.csv")
    assert header == ["", "caption", "videopath", "score"]
    judged = [r for r in rows if r["sa"] is not None]
    assert [o[1] for o in official] == [r["caption"] for r in judged]
    _assert_reads_back(tmp_path / "official" / "output_sa.csv", header, official)
    rule_csv = tmp_path / "official" / "rule.csv"
    _assert_reads_back(rule_csv, *csvio.read_rows(rule_csv))
    assert [r[1] for r in csvio.read_rows(rule_csv)[1]] == [r["rule_text"] for r in rows if r["rule_text"]]


def test_prompts_csv_round_trips_and_keeps_is_hard_missing(tmp_path: Path) -> None:
    texts = nasty_strings(40, seed=2)
    hard = (None, True, False)
    prompts = tuple(
        Prompt(
            f"p-{k:04d}",
            caption=t,
            upsampled_caption=texts[-1 - k],
            action=t[:20],
            is_hard=hard[k % 3],
            category=texts[k // 2],
            rule=t,
            extra={"note": t},
        )
        for k, t in enumerate(texts)
    )
    ps = PromptSet(prompts, "nasty", extra_columns=("note",))
    path = tmp_path / "prompts.csv"
    ps.write(path)
    assert path.read_bytes() == ps.to_csv_bytes()
    rows = [
        [
            p.prompt_id,
            p.caption,
            p.upsampled_caption,
            p.action,
            "" if p.is_hard is None else str(p.is_hard),
            p.category,
            p.rule,
            p.extra["note"],
        ]
        for p in prompts
    ]
    _assert_reads_back(path, ps.columns(), rows)


def test_report_tables_round_trip(tmp_path: Path) -> None:
    texts = nasty_strings(20, seed=4)
    table = Table(
        id="t",
        title="t",
        columns=[Column("label", "Label"), Column("value", "Value", fmt="num")],
        rows=[{"label": t, "value": None if k % 2 else float(k)} for k, t in enumerate(texts)],
    )
    path = tmp_path / "t.csv"
    write_table_csv(table, path)
    keys = table.raw_keys()
    expected = [[str(row.get(k)) if row.get(k) is not None else "" for k in keys] for row in table.rows]
    _assert_reads_back(path, keys, expected)
