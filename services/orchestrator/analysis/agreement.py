"""Agreement of a judge with the human labels on the same videos.

Input: a matched frame (:func:`leaderboard.match_human`): one row per video with the judge's ``sa``,
``pc``, ``joint`` and the human ``sa_h``, ``pc_h``, ``joint_h``. Output (:func:`agreement`): Pearson r
(with its Fisher-z 95% CI, scipy's ``pearsonr``) and Spearman rho of SA and of PC, and on the joint pass
(positive = pass) the 2x2 table, accuracy, precision, recall, F1 and Cohen's kappa.

Cohen's kappa from the 2x2 table ``[[tn, fp], [fn, tp]]`` (rows human, columns judge):
``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed agreement and ``p_e`` the agreement
expected from the two marginal pass rates; undefined (NaN) when ``p_e = 1`` (both raters constant and
equal).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import crosstab

#: VideoPhy-2 paper, AutoEval against humans on unseen prompts (docs/analysis.md; GAP_STATEMENT)
PUBLISHED_AGREEMENT = {"r_sa": 0.47, "r_pc": 0.37, "accuracy": 0.791, "f1": 0.511}
PUBLISHED_AGREEMENT_NOTE = (
    "Published VideoPhy-2 AutoEval agreement with humans (unseen prompts): Pearson r 0.47 (SA), "
    "0.37 (PC), joint accuracy 79.1%, joint F1 51.1%; no Spearman or kappa was published."
)
_NAN = float("nan")


def confusion(judge_pass: np.ndarray, human_pass: np.ndarray) -> dict[str, int]:
    """The 2x2 table of joint passes: ``tp`` both pass, ``fp`` judge only, ``fn`` human only, ``tn``."""
    levels = ([False, True], [False, True])
    counts = crosstab(np.asarray(human_pass, bool), np.asarray(judge_pass, bool), levels=levels).count
    (tn, fp), (fn, tp) = counts.tolist()
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)}


def cohen_kappa(table: dict[str, int]) -> float:
    """Cohen's kappa of a 2x2 table (see the module docstring); NaN when undefined."""
    n = sum(table.values())
    if n == 0:
        return _NAN
    observed = (table["tp"] + table["tn"]) / n
    judge_yes = (table["tp"] + table["fp"]) / n
    human_yes = (table["tp"] + table["fn"]) / n
    expected = judge_yes * human_yes + (1 - judge_yes) * (1 - human_yes)
    return (observed - expected) / (1 - expected) if expected < 1 else _NAN


def _constant(x: np.ndarray) -> bool:
    return len(x) < 3 or bool(np.all(x == x[0]))


def correlations(x: pd.Series, y: pd.Series) -> dict[str, float]:
    """Pearson r with its 95% CI (Fisher z) and Spearman rho; NaN under 3 pairs or a constant side."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    if _constant(a) or _constant(b):
        return {"r": _NAN, "r_lo": _NAN, "r_hi": _NAN, "rho": _NAN}
    pearson = stats.pearsonr(a, b)
    ci = pearson.confidence_interval(0.95) if len(a) > 3 else None
    return {
        "r": float(pearson.statistic),
        "r_lo": float(ci.low) if ci else _NAN,
        "r_hi": float(ci.high) if ci else _NAN,
        "rho": float(stats.spearmanr(a, b).statistic),
    }


def agreement(matched: pd.DataFrame) -> dict[str, Any]:
    """Correlations of SA and PC, and the joint-pass table with accuracy, precision, recall, F1 and kappa.

    Keys: ``n``, ``r_sa`` (+ ``r_sa_lo``/``r_sa_hi``), ``rho_sa``, the same for ``pc``, ``tp``, ``fp``,
    ``fn``, ``tn``, ``accuracy``, ``precision``, ``recall``, ``f1``, ``kappa``, ``joint_judge``,
    ``joint_human``.
    """
    n = len(matched)
    judge = matched["joint"].to_numpy(float) == 1
    human = matched["joint_h"].to_numpy(float) == 1
    table = confusion(judge, human)
    tp, fp, fn = table["tp"], table["fp"], table["fn"]
    out: dict[str, Any] = {"n": n}
    for score in ("sa", "pc"):
        c = correlations(matched[score], matched[f"{score}_h"])
        out.update(
            {
                f"r_{score}": c["r"],
                f"r_{score}_lo": c["r_lo"],
                f"r_{score}_hi": c["r_hi"],
                f"rho_{score}": c["rho"],
            }
        )
    out.update(table)
    out.update(
        {
            "accuracy": float((judge == human).mean()) if n else _NAN,
            "precision": tp / (tp + fp) if tp + fp else _NAN,
            "recall": tp / (tp + fn) if tp + fn else _NAN,
            "f1": 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else _NAN,
            "kappa": cohen_kappa(table),
            "joint_judge": float(judge.mean()) if n else _NAN,
            "joint_human": float(human.mean()) if n else _NAN,
        }
    )
    return out


__all__ = ["PUBLISHED_AGREEMENT", "agreement", "cohen_kappa", "confusion", "correlations"]
