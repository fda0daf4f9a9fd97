"""An estimate, with its uncertainty, of a run's *human* joint score from its judge scores.

Method (written down in docs/analysis.md, "Calibration to the human scale"):

* **Fit** on the labelled videos: every leaderboard video that the same judge scored and humans labelled
  (:func:`leaderboard.match_human`). Per video, a logistic regression (scikit-learn, no penalty, maximum
  likelihood) of the human joint pass on the judge's SA, PC and the judge's own joint pass:
  ``P(human pass) = expit(b0 + b1*SA + b2*PC + b3*[SA>=4 and PC>=4])``. The judge answers in 25
  (SA, PC) cells, so the fit runs on the cells weighted by their video counts: the same likelihood.
* **Estimate** for a run the humans never saw: the mean over its scored videos of the fitted
  probability. With an intercept and the judge-pass term, maximum likelihood makes the mean fitted
  probability on the labelled videos equal their human joint exactly, overall and separately among the
  judge's passes and fails (the score equations), which the tests check.
* **Uncertainty**: a seeded percentile bootstrap that redraws, in each replicate, the labelled actions
  (and refits) and the run's actions, so the interval holds both the fit's and the run's sampling error.
  At most :data:`MAX_BOOTSTRAP` replicates (one refit each).
* **Refused** (no estimate, a reason instead) with fewer than :data:`MIN_LABELLED` labelled videos or
  fewer than :data:`MIN_EVENTS` human passes or human fails (about ten events per fitted coefficient).
* **Transfer check**: the fit must carry over to a model it never saw. Leave one leaderboard model out,
  fit on the others, estimate the left-out model's human joint, and compare it with the truth
  (:func:`leave_one_model_out`); the error of that check is the honest size of the method's bias.

The estimate assumes the judge errs on the user's videos as it errs on the leaderboard's (the same
relation between judge scores and human verdicts); a model whose failures the judge sees differently
breaks it, which is why it is always labelled an estimate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from .intervals import DEFAULT_CONFIDENCE, DEFAULT_SEED
from .loading import PASS_THRESHOLD

MIN_LABELLED = 100
MIN_EVENTS = 30
MAX_BOOTSTRAP = 2_000
#: a slope this large (per score point) means the fit found (quasi-)separated data
SEPARATION = 10.0
FEATURES = ("intercept", "sa", "pc", "judge_pass")
METHOD = (
    "logistic regression of the human joint pass on the judge's SA, PC and joint pass, fitted by maximum "
    "likelihood on the labelled leaderboard videos; the estimate is the run's mean fitted probability; "
    "CI: percentile bootstrap over the labelled actions (refit) and the run's actions"
)


def _design(sa: np.ndarray, pc: np.ndarray) -> np.ndarray:
    sa, pc = np.asarray(sa, float), np.asarray(pc, float)
    judge_pass = ((sa >= PASS_THRESHOLD) & (pc >= PASS_THRESHOLD)).astype(float)
    return np.column_stack([sa, pc, judge_pass])


def _fit(x: np.ndarray, passes: np.ndarray, fails: np.ndarray) -> np.ndarray | None:
    """Coefficients (intercept first) of the weighted cell-level fit; None with a single class."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if passes.sum() <= 0 or fails.sum() <= 0:
        return None
    keep_p, keep_f = passes > 0, fails > 0
    features = np.vstack([x[keep_p], x[keep_f]])
    target = np.concatenate([np.ones(keep_p.sum()), np.zeros(keep_f.sum())])
    weight = np.concatenate([passes[keep_p], fails[keep_f]])
    # Newton steps on 4 coefficients: the maximum to machine precision (the score equations hold)
    model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10, max_iter=100)
    with warnings.catch_warnings():
        # a separable bootstrap replicate has no finite maximum: its large coefficients still predict
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features, target, sample_weight=weight)
    return np.concatenate([model.intercept_, model.coef_[0]])


def _predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return expit(beta[0] + x @ beta[1:])


@dataclass
class Calibration:
    """A fitted calibration of one judge, or the reason there is none (``refused``)."""

    judge: str
    n_labelled: int
    n_passes: int
    models: list[str]
    beta: np.ndarray | None = None
    refused: str = ""
    cells: np.ndarray = field(default_factory=lambda: np.empty((0, 3)))
    #: per bootstrap replicate: the refitted coefficients (NaN rows where a replicate had one class)
    boot_beta: np.ndarray = field(default_factory=lambda: np.empty((0, 4)))
    seed: int = DEFAULT_SEED

    @property
    def ok(self) -> bool:
        return self.beta is not None and not self.refused

    @property
    def separated(self) -> bool:
        return self.beta is not None and bool(np.max(np.abs(self.beta[1:])) > SEPARATION)

    def coefficients(self) -> dict[str, float]:
        return dict(zip(FEATURES, map(float, self.beta), strict=True)) if self.beta is not None else {}


def _cell_counts(df: pd.DataFrame, cells: np.ndarray, value: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(cluster labels, counts per cluster x cell) of the rows; ``value`` picks rows where it is 1."""
    x = _design(df["sa"].to_numpy(float), df["pc"].to_numpy(float))
    cell_index = {tuple(c): i for i, c in enumerate(map(tuple, cells))}
    idx = np.array([cell_index[tuple(r)] for r in map(tuple, x)], dtype=int)
    labels, cluster = np.unique(df["cluster"].astype(str).to_numpy(), return_inverse=True)
    weight = np.ones(len(df)) if value is None else (df[value].to_numpy(float) == 1).astype(float)
    counts = np.zeros((len(labels), len(cells)))
    np.add.at(counts, (cluster, idx), weight)
    return labels, counts


def fit_calibration(
    labelled: pd.DataFrame,
    judge: str,
    n_boot: int = MAX_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
) -> Calibration:
    """Fit on ``labelled`` (matched rows: judge ``sa``/``pc``, human ``joint_h``, ``cluster``, ``model``)."""
    labelled = labelled[labelled["sa"].notna() & labelled["pc"].notna() & labelled["joint_h"].notna()]
    n = len(labelled)
    n_pass = int((labelled["joint_h"] == 1).sum())
    models = sorted(labelled["model"].astype(str).unique()) if n else []
    cal = Calibration(judge=judge, n_labelled=n, n_passes=n_pass, models=models, seed=seed)
    short = min(n_pass, n - n_pass)
    if n < MIN_LABELLED or short < MIN_EVENTS:
        cal.refused = (
            f"{n} labelled videos with {n_pass} human passes and {n - n_pass} fails; a calibration needs "
            f"at least {MIN_LABELLED} videos and {MIN_EVENTS} of each"
        )
        return cal
    cells = np.unique(_design(labelled["sa"].to_numpy(float), labelled["pc"].to_numpy(float)), axis=0)
    _, passes = _cell_counts(labelled, cells, "joint_h")
    _, totals = _cell_counts(labelled, cells, None)
    fails = totals - passes
    cal.cells = cells
    cal.beta = _fit(cells, passes.sum(0), fails.sum(0))
    reps = min(n_boot, MAX_BOOTSTRAP)
    rng = np.random.default_rng(seed)
    k = passes.shape[0]
    boot = np.full((max(reps, 0), len(FEATURES)), np.nan)
    for b in range(reps):
        w = rng.multinomial(k, np.full(k, 1.0 / k)).astype(float)
        beta = _fit(cells, w @ passes, w @ fails)
        if beta is not None:
            boot[b] = beta
    cal.boot_beta = boot
    return cal


def estimate(cal: Calibration, run: pd.DataFrame, confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:
    """The estimated human joint of ``run`` (a typed frame, its scored items) with a bootstrap CI.

    Keys: ``n``, ``human_est``, ``human_est_lo``, ``human_est_hi``, ``share_unseen`` (share of the run's
    videos in an (SA, PC) cell no labelled video has: extrapolated), ``refused`` (reason or "").
    """
    nan = float("nan")
    scored = run[run["status"] == "scored"] if "status" in run.columns else run
    out = {
        "n": len(scored),
        "human_est": nan,
        "human_est_lo": nan,
        "human_est_hi": nan,
        "share_unseen": nan,
        "refused": cal.refused,
    }
    if not cal.ok:
        return out
    if scored.empty:
        out["refused"] = "no scored videos"
        return out
    x = _design(scored["sa"].to_numpy(float), scored["pc"].to_numpy(float))
    known = {tuple(c) for c in map(tuple, cal.cells)}
    out["share_unseen"] = float(np.mean([tuple(r) not in known for r in map(tuple, x)]))
    out["human_est"] = float(_predict(cal.beta, x).mean())
    ok_boot = cal.boot_beta[~np.isnan(cal.boot_beta).any(axis=1)]
    if len(ok_boot) >= 2:
        run_cells, run_idx = np.unique(x, axis=0, return_inverse=True)
        labels, cluster = np.unique(scored["cluster"].astype(str).to_numpy(), return_inverse=True)
        counts = np.zeros((len(labels), len(run_cells)))
        np.add.at(counts, (cluster, run_idx.ravel()), 1.0)
        rng = np.random.default_rng(cal.seed + 1)
        k = len(labels)
        w = rng.multinomial(k, np.full(k, 1.0 / k), size=len(ok_boot)).astype(float) @ counts
        probs = expit(ok_boot[:, :1] + ok_boot[:, 1:] @ run_cells.T)  # replicate x cell
        reps = (w * probs).sum(1) / w.sum(1)
        alpha = 1.0 - confidence
        low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        out["human_est_lo"], out["human_est_hi"] = float(low), float(high)
    return out


def leave_one_model_out(labelled: pd.DataFrame, judge: str) -> list[dict[str, Any]]:
    """Per leaderboard model: fit without it (no bootstrap), estimate its human joint, compare."""
    rows = []
    for model, part in labelled.groupby("model", sort=True):
        cal = fit_calibration(labelled[labelled["model"] != model], judge, n_boot=0)
        est = estimate(cal, part.assign(status="scored"))
        human = float(part["joint_h"].mean())
        rows.append(
            {
                "model_id": str(model),
                "n": len(part),
                "human": human,
                "judge": float(part["joint"].mean()),
                "human_est": est["human_est"],
                "error": est["human_est"] - human,
                "refused": est["refused"],
            }
        )
    return rows


__all__ = [
    "METHOD",
    "MIN_EVENTS",
    "MIN_LABELLED",
    "Calibration",
    "estimate",
    "fit_calibration",
    "leave_one_model_out",
]
