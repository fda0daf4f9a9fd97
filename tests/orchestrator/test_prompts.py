"""Prompt sets: stable ids, content hash, VideoPhy-2 reduction, malformed input named precisely."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import pytest

from videophy_bench.common.limits import MAX_JUDGE_TEXT_CHARS, MAX_PROMPT_CHARS
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.prompts import PromptSetError, load_csv, load_prompt_set, normalize_caption


def write(path, text: str | bytes):
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def test_sample_has_ids_metadata_and_a_stable_hash():
    a, b = load_prompt_set("sample"), load_prompt_set("sample")
    assert [p.prompt_id for p in a.prompts][:3] == ["s01", "s02", "s03"]
    assert a.sha256 == b.sha256 and len(a.sha256) == 64
    assert any(p.is_hard for p in a.prompts) and not all(p.is_hard for p in a.prompts)
    assert all(p.action and p.category and p.upsampled_caption for p in a.prompts)


def test_caption_hash_ids_survive_reordering_and_extra_columns_are_kept(tmp_path):
    one = load_csv(write(tmp_path / "a.csv", "caption,source\nA ball rolls.,x\nA cup falls.,y\n"))
    two = load_csv(write(tmp_path / "b.csv", "caption,source\nA cup falls.,y\nA ball rolls.,x\n"))
    ids_one = {p.caption: p.prompt_id for p in one.prompts}
    assert ids_one == {p.caption: p.prompt_id for p in two.prompts}
    assert all(i.startswith("p-") for i in ids_one.values())
    assert one.prompts[0].extra == {"source": "x"}
    assert "source" in one.to_csv_bytes().decode().splitlines()[0]


def test_prepared_set_round_trips_with_the_same_hash(tmp_path):
    ps = load_prompt_set("sample")
    meta = ps.write(tmp_path / "set.csv")
    again = load_csv(tmp_path / "set.csv")
    assert again.sha256 == ps.sha256 == meta["sha256"]
    assert [p.prompt_id for p in again.prompts] == [p.prompt_id for p in ps.prompts]


def test_videophy2_test_csv_is_reduced_to_unique_sorted_prompts(tmp_path):
    rows = [
        [
            "caption",
            "video_url",
            "sa",
            "pc",
            "joint",
            "action",
            "is_hard",
            "model_name",
            "category",
            "",
            "upsampled_caption",
        ],
        ["Zebra runs.", "u1", "3", "4", "0", "running", "True", "wan", "Sports", "", "nan"],
        ["Apple falls.", "u2", "4", "4", "1", "falling", "False", "sora", "Objects", "", "An apple drops."],
        ["Zebra runs.", "u3", "5", "5", "1", "running", "True", "cosmos", "Sports", "", "A zebra sprints."],
    ]
    path = tmp_path / "videophy2_test.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    ps = load_csv(path)
    assert [(p.prompt_id, p.caption) for p in ps.prompts] == [
        ("vp2-0000", "Apple falls."),
        ("vp2-0001", "Zebra runs."),
    ]
    zebra = ps.prompts[1]
    assert (
        zebra.is_hard is True and zebra.upsampled_caption == "A zebra sprints." and zebra.action == "running"
    )
    assert (
        zebra.gen_prompt(upsampled=True) == "A zebra sprints."
        and zebra.gen_prompt(upsampled=False) == "Zebra runs."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prompt,action\nA ball.,x\n", "line 1: missing required column 'caption'"),
        ("caption,action\nA ball.,x\n ,y\n", "line 3: column 'caption' is empty"),
        (
            "id,caption\n1,A ball.\n2,A cup.\n1,A pen.\n",
            "line 4: column 'id': duplicate id '1' (first on line 2)",
        ),
        ("caption\nA ball.\nA ball.\n", "line 3: column 'caption': duplicate caption"),
        ("id,caption\n../x,A ball.\n", "line 2: column 'id': '../x' is not a safe id"),
        ("caption,is_hard\nA ball.,maybe\n", "line 2: column 'is_hard': 'maybe' is not a boolean"),
        ("caption\n", "no prompts"),
    ],
)
def test_malformed_csv_is_refused_with_file_row_and_column(tmp_path, text, expected):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(PromptSetError) as err:
        load_csv(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_bad_encoding_names_the_line(tmp_path):
    path = write(tmp_path / "latin1.csv", b"caption\nA ball.\n" + "Un caf\u00e9.\n".encode("latin-1"))
    with pytest.raises(PromptSetError, match=r"latin1.csv: line 3: not valid UTF-8"):
        load_csv(path)


def test_prompts_command_writes_set_and_hash(tmp_path, capsys):
    assert main(["prompts", "sample", "--out", str(tmp_path / "p.csv")]) == 0
    assert (tmp_path / "p.csv").is_file() and (tmp_path / "p.csv.json").is_file()
    assert load_prompt_set("sample").sha256 in capsys.readouterr().out
    assert (
        main(["prompts", str(write(tmp_path / "bad.csv", "x\n1\n")), "--out", str(tmp_path / "q.csv")]) == 2
    )
    assert "missing required column 'caption'" in capsys.readouterr().err


# -- the VideoPhy-2 test set: real rows (tests/orchestrator/data/README.md) -------------------------
VP2_ROWS = Path(__file__).parent / "data" / "videophy2_test_rows.csv"


def vp2_rows() -> tuple[list[str], list[dict[str, str]]]:
    with open(VP2_ROWS, newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    return header, [dict(zip(header, r, strict=True)) for r in rows]


def copy_under(rows: list[dict[str, str]], of: str, model: str, **changes: str) -> dict[str, str]:
    """A real row of caption `of` as another model's row, with `changes`: a cross-model disagreement."""
    row = dict(next(r for r in rows if r["caption"] == of))
    return {**row, "model_name": model, "video_url": f"https://example.invalid/{model}.mp4", **changes}


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([r[h] for h in header] for r in rows)
    return path


BEER = "A hand holds a bottle of beer upright, pouring it into a mug until it's full."
BULL = (
    "A rider sits on the mechanical bull, which starts to buck gently; "
    "then, the intensity gradually increases."
)
GOLF = "A golfer chips the ball onto the green, the ball rolling smoothly towards the hole."
HORSESHOE = "A horseshoe is tossed, landing around a metal stake."
BUCKET = "A person carries a heavy bucket while wading through chest-deep water."
SOMERSAULT = "A child somersaults on a large bouncy castle, their body rotating fully in the air."


def with_conflicts() -> tuple[list[str], list[dict[str, str]]]:
    """The real rows plus copies under other models that disagree as the full test set's rows do."""
    header, rows = vp2_rows()
    horseshoe_up = next(r for r in rows if r["caption"] == HORSESHOE)["upsampled_caption"]
    return header, [
        *rows,
        copy_under(rows, BEER, "wan", is_hard="0"),  # 2 rows say hard, 1 not
        copy_under(rows, BULL, "wan", category="Object Interactions"),  # 2 against 1
        copy_under(rows, GOLF, "ray2", action="playing golf"),  # a tie: the smaller value wins
        copy_under(rows, HORSESHOE, "hunyuan", upsampled_caption=horseshoe_up.strip("\u201c\u201d")),
        copy_under(rows, BUCKET, "hunyuan", action="wading", category="Sports and Physical Activities"),
        copy_under(rows, SOMERSAULT, "cogvideo", caption=SOMERSAULT.replace("child ", "child  ")),
    ]


def test_videophy2_set_and_hash_do_not_depend_on_row_order(tmp_path):
    header, rows = with_conflicts()
    base = load_csv(write_rows(tmp_path / "a.csv", header, rows), source="vp2")
    orders = [list(reversed(rows))] + [random.Random(k).sample(rows, len(rows)) for k in range(5)]
    for k, order in enumerate(orders):
        again = load_csv(write_rows(tmp_path / f"o{k}.csv", header, order), source="vp2")
        assert again.to_csv_bytes() == base.to_csv_bytes() and again.sha256 == base.sha256
        assert again.describe() == base.describe()  # conflicts and summary included


def test_cross_model_conflicts_are_resolved_by_vote_and_all_reported(tmp_path, caplog):
    header, rows = with_conflicts()
    with caplog.at_level(logging.WARNING, logger="videophy_bench.orchestrator.prompts"):
        ps = load_csv(write_rows(tmp_path / "vp2.csv", header, rows))
    by_caption = {normalize_caption(p.caption): p for p in ps.prompts}
    assert by_caption[BEER].is_hard is True
    assert by_caption[BULL].category == "Sports and Physical Activities"
    assert by_caption[GOLF].action == "golf"  # 1 row against 1: "golf" < "playing golf"
    assert not by_caption[HORSESHOE].upsampled_caption.startswith("\u201c")  # "I" < U+201C
    assert (by_caption[BUCKET].action, by_caption[BUCKET].category) == (
        "wading",
        "Sports and Physical Activities",
    )  # an empty cell abstains: no conflict
    found = {(c.caption, c.column): c for c in ps.conflicts}
    assert set(found) == {
        (BEER, "is_hard"),
        (BULL, "category"),
        (GOLF, "action"),
        (HORSESHOE, "upsampled_caption"),
        (SOMERSAULT, "caption"),
    }
    beer = found[(BEER, "is_hard")]
    assert beer.chosen == "True" and beer.values == (
        {"value": "True", "rows": 2, "models": ["cogvideo", "hunyuan"]},
        {"value": "False", "rows": 1, "models": ["wan"]},
    )
    meta = ps.write(tmp_path / "set.csv")
    on_disk = json.loads((tmp_path / "set.csv.json").read_text())
    assert on_disk["n_conflicts"] == 5 and on_disk["conflicts"] == meta["conflicts"]
    assert {(c["prompt_id"], c["column"]) for c in on_disk["conflicts"]} == {
        (c.prompt_id, c.column) for c in ps.conflicts
    }
    assert any(
        "disagree on 5 values of 5 captions" in r.message and "is_hard 1" in r.message for r in caplog.records
    )


def test_an_internal_double_space_does_not_make_a_second_prompt(tmp_path):
    header, rows = with_conflicts()
    ps = load_csv(write_rows(tmp_path / "vp2.csv", header, rows))
    somersault = [p for p in ps.prompts if normalize_caption(p.caption) == SOMERSAULT]
    assert len(somersault) == 1 and somersault[0].caption == SOMERSAULT  # a tie: the normal spelling
    # Other CSVs: the same caption twice is refused, and the id is that of the normalised caption.
    with pytest.raises(PromptSetError, match=r"line 3: column 'caption': duplicate caption.*first on line 2"):
        load_csv(write(tmp_path / "dup.csv", "caption\nA ball  rolls.\nA ball rolls.\n"))
    one = load_csv(write(tmp_path / "one.csv", 'caption\n" A ball\u00a0 rolls. "\n')).prompts[0]
    two = load_csv(write(tmp_path / "two.csv", "caption\nA ball rolls.\n")).prompts[0]
    assert one.prompt_id == two.prompt_id
    assert one.caption == " A ball\u00a0 rolls. "  # stored as written: the judge sees the file's text


def test_summary_of_the_prepared_set_is_printed_stored_and_checked(tmp_path, capsys, caplog):
    out = tmp_path / "p.csv"
    with caplog.at_level(logging.WARNING, logger="videophy_bench.orchestrator.prompts"):
        assert main(["prompts", str(VP2_ROWS), "--out", str(out)]) == 0
    summary = json.loads((tmp_path / "p.csv.json").read_text())["summary"]
    assert summary == {
        "prompts": 19,
        "hard": 10,
        "not_hard": 9,
        "hard_unknown": 0,
        "actions": 18,  # the bucket row has none
        "categories": 2,
        "per_category": {"Object Interactions": 8, "Sports and Physical Activities": 10},
        "with_upsampled": 19,
        "without_upsampled": 0,
        "with_rule": 0,
    }
    printed = capsys.readouterr().out
    assert "19 prompts: 10 hard, 9 not hard" in printed and "2 categories" in printed
    warned = [r.message for r in caplog.records if "benchmark" in r.message]
    assert len(warned) == 1 and "prompts 19 (benchmark: 600)" in warned[0] and "categories" not in warned[0]
    # A set that is not the test set is not compared with the benchmark.
    assert load_prompt_set("sample").figure_warnings() == []


def test_unnamed_columns_are_dropped_only_when_empty(tmp_path):
    _, rows = vp2_rows()
    assert "" not in load_csv(VP2_ROWS).columns() and len(rows[0]) == 16
    assert load_csv(write(tmp_path / "a.csv", "caption,,x\nA ball.,,1\n")).extra_columns == ("x",)
    kept = load_csv(write(tmp_path / "b.csv", ",caption\n0,A ball.\n1,A cup.\n"))  # a pandas index
    assert kept.extra_columns == ("Unnamed: 0",) and kept.prompts[1].extra == {"Unnamed: 0": "1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("caption,action\nA ball.,x\nA \x00cup.,y\n", "line 3: column 'caption' contains a NUL character"),
        ('caption,action\n"A\nball.",x\nA cup.,\x00\n', "line 4: column 'action' contains a NUL character"),
        (
            'caption,action\nA ball.,x\n"A cup.,y\nA pen.,z\n',
            "line 3: column 'caption': a quoted field is never closed",
        ),
        ('caption,action\nA ball.,"x\nA pen.,z\n', "line 2: column 'action': a quoted field is never closed"),
        ('caption,action\n"A" ball.,x\n', "line 2: column 'caption': ' ' after a closing '\"'"),
        (
            f"caption\n{'a' * (MAX_JUDGE_TEXT_CHARS + 1)}\n",
            f"line 2: column 'caption' has {MAX_JUDGE_TEXT_CHARS + 1} characters; "
            f"the limit is {MAX_JUDGE_TEXT_CHARS}",
        ),
        (
            f"caption,upsampled_caption\nA ball.,x\nA cup.,{'u' * (MAX_PROMPT_CHARS + 1)}\n",
            f"line 3: column 'upsampled_caption' has {MAX_PROMPT_CHARS + 1} characters",
        ),
        (f"caption,rule\nA ball.,{'r' * (MAX_JUDGE_TEXT_CHARS + 1)}\n", "line 2: column 'rule' has"),
    ],
)
def test_nul_broken_quotes_and_over_limit_texts_are_refused_with_line_and_column(tmp_path, text, expected):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(PromptSetError) as err:
        load_csv(path)
    assert str(err.value).startswith(f"{path}: ") and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_a_videophy2_row_over_the_limits_is_refused_with_its_line(tmp_path):
    header, rows = vp2_rows()
    rows[4] = {**rows[4], "upsampled_caption": "u" * (MAX_PROMPT_CHARS + 1)}
    with pytest.raises(PromptSetError, match=r"vp2.csv: line 6: column 'upsampled_caption' has"):
        load_csv(write_rows(tmp_path / "vp2.csv", header, rows))
