"""The dataset card (README.md) of a run pushed to the Hugging Face Hub (`videophy-bench push`).

YAML metadata the Hub reads (license, tags, the results.csv config for the dataset viewer), then the
headline numbers with their 95% CIs, the configuration, how the results were made and the VideoPhy-2
citation. Built from results.json (docs/results-schema.md), so the card shows the pushed numbers, and
manifest.json's redacted commands.
"""

from __future__ import annotations

import json
from typing import Any

from videophy_bench.orchestrator.tracking.record import commands, is_number

TAGS = ("videophy2", "physical-commonsense", "text-to-video", "video-generation", "evaluation",
        "videophy-bench")
VIDEOPHY2_URL = "https://github.com/Hritikbansal/videophy/tree/main/VIDEOPHY2"
CITATION = """@article{bansal2025videophy2,
  title   = {VideoPhy-2: A Challenging Action-Centric Physical Commonsense Evaluation in Video Generation},
  author  = {Bansal, Hritik and Peng, Clark and Bitton, Yonatan and Goldenberg, Roman and Grover, Aditya
             and Chang, Kai-Wei},
  journal = {arXiv preprint arXiv:2503.06800},
  year    = {2025}
}"""


def _pct(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not is_number(value):
        return "–"
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if is_number(lo) and is_number(hi) else ""
    return f"{100 * value:.1f}%{ci}"


def _mean(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not is_number(value):
        return "–"
    lo, hi = row.get(f"{key}_boot_lo"), row.get(f"{key}_boot_hi")
    ci = f" [{lo:.2f}, {hi:.2f}]" if is_number(lo) and is_number(hi) else ""
    return f"{value:.2f}{ci}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def numbers_table(doc: dict[str, Any]) -> str:
    """One row per (condition, subset): n, joint with its Wilson CI, mean SA/PC with bootstrap CIs."""
    lines = ["| arm | round | subset | n scored / items | joint (95% CI) | mean SA (95% CI) "
             "| mean PC (95% CI) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for cond in doc.get("conditions", []):
        for row in cond["subsets"]:
            lines.append(f"| {_md(cond['arm'])} | {cond['round']} | {_md(row['subset'])} | "
                         f"{row.get('n', 0)} / {row.get('n_items', 0)} | {_pct(row, 'joint')} | "
                         f"{_mean(row, 'mean_sa')} | {_mean(row, 'mean_pc')} |")
    return "\n".join(lines)


def _size_category(n: int) -> str:
    return "n<1K" if n < 1000 else "1K<n<10K" if n < 10_000 else "10K<n<100K"


def card_text(doc: dict[str, Any], files: list[str], license_id: str,
              manifest: dict[str, Any] | None = None) -> str:
    """README.md of the dataset repo; `files` are the repo paths pushed beside it."""
    from huggingface_hub import DatasetCard, DatasetCardData

    run = doc.get("run") or {}
    config = run.get("config") or {}
    summary = doc.get("summary") or {}
    completeness = doc.get("completeness") or {}
    tool = doc.get("tool") or {}
    prompt_set = run.get("prompt_set") or {}
    model = config.get("generator_model_id") or config.get("generator_model") or "existing videos"
    data = DatasetCardData(
        license=license_id,
        pretty_name=f"VideoPhy-2 results: {model} ({run.get('name')})",
        tags=list(TAGS),
        task_categories=["text-to-video"],
        size_categories=_size_category(int(completeness.get("n_selected") or 0)),
        configs=[{"config_name": "default", "data_files": [{"split": "test", "path": "results.csv"}]}],
    )
    state = ("complete" if completeness.get("complete") else
             f"incomplete: {completeness.get('n_done')} of {completeness.get('n_selected')} items done, "
             f"{completeness.get('n_failed')} failed")
    commit = tool.get("git_commit")
    made_with = f"videophy-bench {tool.get('version')}" + (f" (git {commit})" if commit else "")
    session_commands = commands(manifest or {})
    headline = ", ".join(
        f"{label} {100 * summary[key]:.1f}%" for key, label in
        (("joint", "joint"), ("joint_hard", "hard"), ("joint_easy", "easy"))
        if is_number(summary.get(key)))
    body = [
        f"# VideoPhy-2 results: {model}",
        "",
        f"Physical-commonsense scores of `{model}` on the [VideoPhy-2]({VIDEOPHY2_URL}) benchmark "
        f"prompts, judged by `{config.get('judge_model') or 'the run’s judge'}`, made with "
        f"videophy-bench (run `{run.get('name')}`, {state})."
        + (f" Headline: {headline}." if headline else ""),
        "",
        "## Numbers",
        "",
        "Joint = share of scored videos with SA >= 4 and PC >= 4 (95% Wilson interval); mean SA and PC on "
        "the judge's 1-5 scale (95% bootstrap interval over actions). Items whose judge answer could not be "
        "parsed are left out of these and counted in `results.json` (`n_unparseable`).",
        "",
        numbers_table(doc),
        "",
        "## Configuration",
        "",
        f"Configuration hash `{run.get('config_hash')}`; prompt set `{prompt_set.get('source')}`"
        + (f" @ `{prompt_set.get('revision')}`" if prompt_set.get("revision") else "")
        + f" (sha256 `{prompt_set.get('sha256')}`, {prompt_set.get('n')} prompts).",
        "",
        "```json",
        json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True),
        "```",
        "",
        "## How it was made",
        "",
        f"Generated and judged with {made_with}"
        + (":" if session_commands else "."),
        *(["", "```", *session_commands, "```"] if session_commands else []),
        "",
        "Files: " + ", ".join(f"`{f}`" for f in files) + ". `results.csv` has one row per video (columns "
        "in videophy-bench's docs/results-schema.md), `results.json` every subset's numbers with "
        "intervals and the full configuration, `official/` the judge's outputs in the official "
        "`inference.py` format.",
        "",
        "## Citation",
        "",
        "The benchmark and its AutoEval judge:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    text = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)
    return str(DatasetCard(text))
