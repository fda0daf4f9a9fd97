"""The `results.csv` columns: the contract between the orchestrator's export and the analysis.

Documented in docs/results-schema.md; both sides import this one tuple.
"""

RESULTS_COLUMNS = (
    "prompt_id",
    "seed",
    "seed_index",
    "round",
    "arm",
    "caption",
    "gen_prompt",
    "prompt_tokens",
    "prompt_truncated",
    "action",
    "is_hard",
    "category",
    "state",
    "error",
    "video_path",
    "sha256",
    "sa",
    "pc",
    "rule",
    "sa_parse",
    "pc_parse",
    "rule_parse",
    "sa_raw",
    "pc_raw",
    "rule_raw",
    "videocon_sa",
    "videocon_pc",
    "joint",
    "gen_seconds",
    "judge_seconds",
)
