"""results.json (versioned, every subset with CIs), seed indices, --version and help defaults."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest
from run_dirs import assert_exports_match_ledger, results

from videophy_bench.common import version
from videophy_bench.orchestrator import results_document
from videophy_bench.orchestrator.analysis import metrics
from videophy_bench.orchestrator.analysis.loading import load_results
from videophy_bench.orchestrator.cli import build_parser, main
from videophy_bench.orchestrator.export import export_run, refresh
from videophy_bench.orchestrator.items import WorkItem, derive_seed, seed_indices
from videophy_bench.orchestrator.ledger import Ledger, RunLock, StoredAnswer

RUN_SEED = 7


def test_seed_indices_recover_the_index_each_seed_was_derived_from():
    keys = [("a", derive_seed(RUN_SEED, "a", k)) for k in (0, 2, 7)] + [("b", derive_seed(RUN_SEED, "b", 1))]
    keys.append(("b", 12345))  # not derived from the run seed
    got = seed_indices(RUN_SEED, keys, limit=1000)
    assert got == {keys[0]: 0, keys[1]: 2, keys[2]: 7, keys[3]: 1}
    assert seed_indices(RUN_SEED + 1, keys[:1], limit=1000) == {}  # another run seed: none of them
    assert seed_indices(RUN_SEED, keys[2:3], limit=7) == {}  # index 7 is beyond limit 7


def _ledger(run_dir: Path, n_prompts: int = 3, n_seeds: int = 2) -> tuple[Ledger, list[WorkItem]]:
    """A ledger of a run with --seed RUN_SEED --seeds n_seeds: every item judged, the first SA answer
    unparseable (scored 0, as the official script does)."""
    led = Ledger(run_dir)
    led.check_config({"generator_model": "tiny", "run_seed": RUN_SEED, "judge_model": "tiny"})
    items = [
        WorkItem(f"p{p}", derive_seed(RUN_SEED, f"p{p}", k), f"caption {p}", f"caption {p}", "cfg")
        for p in range(n_prompts)
        for k in range(n_seeds)
    ]
    led.add_items(items)
    for j, item in enumerate(items):
        sa = 0.0 if j == 0 else float(3 + j % 3)
        answers = [StoredAnswer("sa", sa, "unparseable" if j == 0 else "parsed", ""),
                   StoredAnswer("pc", 4.0, "parsed", "")]
        led.record_answers(item.request_id, answers, replica="test", seconds=None, state="judged")
    return led, items


def test_results_json_has_every_subset_with_intervals_from_the_analysis(tmp_path):
    led, _ = _ledger(tmp_path)
    export_run(tmp_path, led.conn)
    doc = json.loads((tmp_path / "results.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())

    assert doc["schema"] == results_document.SCHEMA
    assert doc["schema_version"] == results_document.SCHEMA_VERSION
    assert doc["tool"]["name"] == "videophy-bench" and doc["tool"] == version.tool_info()
    assert doc["run"]["config"] == {"generator_model": "tiny", "run_seed": RUN_SEED, "judge_model": "tiny"}
    assert doc["run"]["config_hash"] == summary["config_hash"]
    assert doc["completeness"] == {k: summary[k] for k in results_document.COMPLETENESS_KEYS}
    assert doc["completeness"]["complete"] is True and doc["summary"] == summary
    [cond] = doc["conditions"]
    assert (cond["arm"], cond["round"], cond["n_items"], cond["n_seeds"]) == ("base", 0, 6, 2)
    assert cond["unparseable"] == {"sa": 1, "pc": 0, "rule": 0}
    # The numbers are the analysis package's, on the same rows (one implementation of the statistics).
    df = load_results(tmp_path / "results.csv")
    assert cond["subsets"] == json.loads(json.dumps(results_document._plain(metrics.subset_table(df))))
    assert [s["subset"] for s in cond["subsets"]][:3] == ["all", "hard", "easy"]
    all_ = cond["subsets"][0]
    assert all_["n"] == 5 and all_["n_unparseable"] == 1 and all_["joint"] == summary["joint"]
    assert all_["joint_lo"] < all_["joint"] < all_["joint_hi"] and "joint_boot_lo" in all_
    assert cond["subsets"][1]["n"] == 0 and cond["subsets"][1]["joint"] is None  # NaN -> null
    assert [a["action"] for a in cond["actions"]] == ["(none)"]
    assert doc["methods"]["bootstrap_resamples"] > 0


def test_per_seed_numbers_group_by_the_seed_index_the_user_chose(tmp_path):
    led, items = _ledger(tmp_path, n_prompts=4, n_seeds=2)
    export_run(tmp_path, led.conn)
    by_key = {(r["prompt_id"], r["seed"]): r["seed_index"] for r in results(tmp_path)}
    for item in items:
        k = by_key[(item.prompt_id, str(item.seed))]
        assert derive_seed(RUN_SEED, item.prompt_id, int(k)) == item.seed
    assert sorted(by_key.values()) == ["0"] * 4 + ["1"] * 4
    assert json.loads((tmp_path / "summary.json").read_text())["n_seeds"] == 2
    [cond] = json.loads((tmp_path / "results.json").read_text())["conditions"]
    assert cond["seed_grouping"] == "seed_index"
    assert [(s["seed"], s["n_items"]) for s in cond["seeds"]] == [
        ("0", 4), ("1", 4), ("per-prompt mean over seeds", 4)
    ]


def test_one_seed_per_prompt_is_one_seed(tmp_path):
    """The quick start (4 prompts, --seeds 1) made 4 different derived seeds: still one seed."""
    led, _ = _ledger(tmp_path, n_prompts=4, n_seeds=1)
    export_run(tmp_path, led.conn)
    assert json.loads((tmp_path / "summary.json").read_text())["n_seeds"] == 1
    df = load_results(tmp_path / "results.csv")
    assert metrics.n_seeds(df) == 1 and metrics.seed_table(df)[0]["seed"] == "0"
    # A results.csv from before seed_index: seeds counted per prompt, not across prompts.
    assert metrics.n_seeds(df.drop(columns=["seed_index"])) == 1


def test_results_json_follows_the_ledger_and_a_running_orchestrator_keeps_it(tmp_path):
    led, items = _ledger(tmp_path)
    export_run(tmp_path, led.conn)
    led.update(items[1].request_id, state="failed", error="boom")
    led.close()
    lock = RunLock(tmp_path, "a run").acquire()  # a run in progress: status/report leave the files
    try:
        assert not refresh(tmp_path).written
        assert json.loads((tmp_path / "results.json").read_text())["completeness"]["n_failed"] == 0
    finally:
        lock.release()
    assert refresh(tmp_path).written
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["completeness"]["n_failed"] == 1 and doc["conditions"][0]["subsets"][0]["n_failed"] == 1
    assert_exports_match_ledger(tmp_path)


def test_version_names_the_package_and_the_checkout(capsys, monkeypatch, tmp_path):
    version.tool_info.cache_clear()  # an earlier test may have cached another HEAD
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == version.version_line() and out.startswith("videophy-bench ")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=version.SOURCE_ROOT, capture_output=True,
                          text=True, check=False).stdout.strip()
    assert version.tool_info()["git_commit"] == (head or None)
    if head:
        assert head[:12] in out
    version.tool_info.cache_clear()
    monkeypatch.setattr(version, "SOURCE_ROOT", tmp_path)  # not a checkout: no commit, no failure
    try:
        assert version.tool_info()["git_commit"] is None
    finally:
        version.tool_info.cache_clear()


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_help_shows_every_default_and_lists_the_presets(capsys):
    from videophy_bench.evaluator.catalog import judge_names
    from videophy_bench.generator.presets import PRESETS

    for parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.default in (None, False, "", argparse.SUPPRESS) or not action.help:
                continue
            text = formatter._get_help_string(action) % {"default": action.default}
            assert "default" in text.lower(), (parser.prog, action.dest)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 1)" in out and "(default: 3600.0)" in out  # --seeds, --item-deadline-s
    assert all(name in out for name in PRESETS) and all(name in out for name in judge_names())
