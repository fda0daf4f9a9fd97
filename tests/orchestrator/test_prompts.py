"""Prompt sets: stable ids, content hash, VideoPhy-2 reduction, malformed input named precisely."""

from __future__ import annotations

import csv

import pytest

from services.orchestrator.cli import main
from services.orchestrator.prompts import PromptSetError, load_csv, load_prompt_set


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
