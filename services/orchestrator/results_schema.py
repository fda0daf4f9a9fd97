"""The `results.csv` columns: the contract between the orchestrator's export and the analysis.

Documented in docs/results-schema.md. The per-task columns (scores; parse status and raw answer of
generative tasks) come from the judge-task registry (services/common/judge_tasks.py), in the place
they have always had: before `joint`. `results_columns()` reads the registry as it is now (a task
registered at run time is exported too); `RESULTS_COLUMNS` is that list at import, for the analysis.
"""

from videophy_bench.common.judge_tasks import result_columns

ITEM_COLUMNS = (
    "prompt_id",
    "seed",
    "seed_index",
    "round",
    "arm",
    "caption",
    "gen_prompt",
    "caption_source",
    "prompt_tokens",
    "prompt_truncated",
    "action",
    "is_hard",
    "category",
    "state",
    "error",
    "video_url",
    "video_path",
    "sha256",
)
TAIL_COLUMNS = ("joint", "gen_seconds", "judge_seconds")


def results_columns() -> tuple[str, ...]:
    return (*ITEM_COLUMNS, *result_columns(), *TAIL_COLUMNS)


RESULTS_COLUMNS = results_columns()
