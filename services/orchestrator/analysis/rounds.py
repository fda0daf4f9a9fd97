"""Refinement rounds of one run (PhyT2V): which round is the result, and every round's joint comparison
with round 0, Holm-adjusted over the rounds (one family: the rounds are several looks at one question).

The primary round is the last one by default. ``best`` picks the round with the highest joint score
after the fact; the report says so, since that comparison with round 0 is optimistic on its own and only
its Holm-adjusted p-value accounts for the choice among rounds.
"""

from __future__ import annotations

import math
from typing import Any

from .document import Column, Section, Table, Text
from .intervals import holm
from .loading import Condition

PRIMARY_CHOICES = ("last", "best")


def round_of(cond: Condition) -> int | None:
    """The single round a condition holds, else None."""
    rounds = cond.df["round"].dropna().unique()
    return int(rounds[0]) if len(rounds) == 1 else None


def is_rounds_report(conditions: list[Condition]) -> bool:
    """Rounds 0, r1, r2, ... of one run: the shape `report RUN` gives for a refined run."""
    rounds = [round_of(c) for c in conditions]
    return (
        len(conditions) >= 2
        and None not in rounds
        and rounds[0] == 0
        and len(set(rounds)) == len(rounds)
        and len({id(c.run) for c in conditions}) == 1
    )


def rounds_section(
    conditions: list[Condition], results: list[dict[str, Any]], primary: str = "last"
) -> Section:
    """The primary round and the Holm-adjusted joint comparisons of rounds 1.. with round 0.

    ``results`` are :func:`paired.compare` results of ``conditions[1:]`` against ``conditions[0]``.
    """
    if primary not in PRIMARY_CHOICES:
        raise ValueError(f"--primary-round {primary!r}: choose one of {', '.join(PRIMARY_CHOICES)}")
    joints = [r["metrics"][0] for r in results]
    adjusted = holm([j["p"] if j["n"] else math.nan for j in joints])
    rows = []
    for cond, joint, p_holm in zip(conditions[1:], joints, adjusted, strict=True):
        rows.append({
            "round": round_of(cond), "condition": cond.label, "n": joint["n"], "joint_a": joint["mean_a"],
            "joint_b": joint["mean_b"], "diff": joint["diff"], "diff_lo": joint["diff_lo"],
            "diff_hi": joint["diff_hi"], "p": joint["p"], "p_holm": p_holm, "primary": "",
        })
    if primary == "last":
        chosen = rows[-1]
        text = (f"Primary result: round {chosen['round']} ({chosen['condition']}), the last round, as fixed "
                "before looking at the scores.")
    else:
        scored = [r for r in rows if r["n"]] or rows
        chosen = max(scored, key=lambda r: (r["joint_b"], -r["round"]))
        text = (f"Primary result: round {chosen['round']} ({chosen['condition']}), SELECTED AFTER THE FACT "
                f"as the best of {len(rows)} rounds by joint score. Its comparison with round 0 is "
                "optimistic; "
                "read its Holm-adjusted p-value, which counts every round.")
    chosen["primary"] = "primary" if primary == "last" else "primary (selected after the fact)"
    table = Table(
        "rounds",
        "Every round vs round 0: joint score (Holm-adjusted over the rounds)",
        [
            Column("round", "round", "int"),
            Column("condition", "condition"),
            Column("n", "paired prompts", "int"),
            Column("joint_a", "round 0", "pct"),
            Column("joint_b", "round r", "pct"),
            Column("diff", "r - 0 [95% CI]", "pp", ("diff_lo", "diff_hi")),
            Column("p", "p", "pvalue"),
            Column("p_holm", "p (Holm)", "pvalue"),
            Column("primary", "result"),
        ],
        rows,
        note="r - 0: the action-cluster paired bootstrap CI; p: the joint score's test of each comparison "
        "section (exact McNemar, or the sign test with several seeds; prompts independent), so a CI "
        "crossing zero can sit beside p < 0.05; p (Holm): adjusted over the rounds compared with round 0. "
        "The per-comparison sections below report unadjusted p-values.",
        latex=True,
    )
    return Section("rounds", "Refinement rounds", [Text(text), table])
