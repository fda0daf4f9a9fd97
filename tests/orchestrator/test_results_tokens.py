"""Every generated prompt's token count reaches results.csv, summary.json and `status`, whatever the
run (here a plain `--upsampled` run, not PhyT2V); a ledger from before the counts exports empty cells."""

from __future__ import annotations

import json
import sqlite3

from run_dirs import assert_exports_match_ledger, results

from videophy_bench.common import csvio
from videophy_bench.generator import prompt_tokens
from videophy_bench.generator.presets import PRESETS
from videophy_bench.generator.tiny import tiny_tokenizer
from videophy_bench.orchestrator.cli import main

CAP = PRESETS["tiny"].max_sequence_length
# Outside the tiny vocabulary: about one token per character, so well over the cap.
LONG = "A juggler keeps " + " ".join(["xylophones, kumquats and zithers"] * 25) + " aloft."


def test_long_upsampled_caption_is_counted_truncated_logged_and_summarised(services, tmp_path, caplog,
                                                                          capsys):
    gen = services.generator().wait_ready()
    prompts = tmp_path / "prompts.csv"
    csvio.write_csv(prompts, ["caption", "upsampled_caption"], [
        ["A ball rolls off a table.", LONG],
        ["A glass of water tips over.", "A glass of water tips over and spills on the table."],
    ])
    run_dir = services.root / "runs" / "tokens"
    args = ["run", "--prompts", str(prompts), "--upsampled", "--no-judge", "--storage-root",
            str(services.root), "--out", str(run_dir), "--generators", gen.address, "--refresh-s", "0.5",
            "--no-progress"]
    with caplog.at_level("WARNING", logger="videophy_bench.orchestrator.dispatch"):
        assert main(args) == 0

    tok = tiny_tokenizer()
    by_prompt = {r["gen_prompt"]: r for r in results(run_dir)}
    assert set(by_prompt) == {LONG, "A glass of water tips over and spills on the table."}
    for text, row in by_prompt.items():
        assert row["state"] == "generated"
        assert row["prompt_tokens"] == str(prompt_tokens.count(tok, text))
    assert int(by_prompt[LONG]["prompt_tokens"]) > CAP and by_prompt[LONG]["prompt_truncated"] == "True"
    short = by_prompt["A glass of water tips over and spills on the table."]
    assert int(short["prompt_tokens"]) < CAP and short["prompt_truncated"] == "False"

    cut = [m for m in caplog.messages if "text encoder read only" in m]
    assert len(cut) == 1 and f"only {CAP} of the prompt's {by_prompt[LONG]['prompt_tokens']}" in cut[0]
    summary = assert_exports_match_ledger(run_dir)
    assert summary["n_prompt_truncated"] == 1
    capsys.readouterr()
    assert main(["status", str(run_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_prompt_truncated"] == 1
    assert main(["status", str(run_dir)]) == 0
    assert "1 prompts cut at the text encoder's token cap" in capsys.readouterr().out

    # A ledger written before the counts existed: its results have no such keys (or no result at all).
    conn = sqlite3.connect(run_dir / "ledger.sqlite")
    with conn:
        for (request_id, gen_result) in conn.execute("SELECT request_id, gen_result FROM items").fetchall():
            old = {k: v for k, v in json.loads(gen_result).items() if "rompt" not in k}
            conn.execute("UPDATE items SET gen_result=? WHERE request_id=?", (json.dumps(old), request_id))
        conn.execute("UPDATE items SET gen_result=NULL WHERE gen_prompt=?", (LONG,))
    conn.close()
    assert main(["status", str(run_dir)]) == 0  # rewrites the exports from the ledger
    assert {(r["prompt_tokens"], r["prompt_truncated"]) for r in results(run_dir)} == {("", "")}
    assert assert_exports_match_ledger(run_dir)["n_prompt_truncated"] == 0
    assert "prompts cut" not in capsys.readouterr().out
