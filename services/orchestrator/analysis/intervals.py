"""Confidence intervals and multiplicity control.

* :func:`wilson_ci` - Wilson score interval of a proportion (scipy's ``binomtest``), NaN for n = 0.
* :func:`cluster_bootstrap` - seeded percentile bootstrap that resamples whole clusters (VideoPhy-2
  actions) with replacement; every statistic is a ratio of sums (a mean over the items of the resampled
  clusters), all statistics share the same resamples, and the same seed gives the same interval.
* :func:`holm` - Holm step-down adjusted p-values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP = 10_000
DEFAULT_SEED = 0
_CHUNK = 1_000


def wilson_ci(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for k successes out of n; (nan, nan) when n = 0."""
    if n <= 0:
        return (float("nan"), float("nan"))
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def cluster_bootstrap(
    values: Mapping[str, Sequence[float]],
    clusters: Sequence[object],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, tuple[float, float]]:
    """Percentile cluster-bootstrap intervals of item means.

    ``values`` maps a statistic name to one value per item (NaN items are ignored for that statistic);
    ``clusters`` gives each item's cluster. Each replicate draws as many clusters as there are, with
    replacement, and computes, per statistic, sum(values) / count(non-NaN values) over the drawn clusters.
    Returns ``{name: (low, high)}``; (nan, nan) when fewer than 2 clusters carry data or ``n_boot < 1``.
    """
    labels, index = np.unique(np.asarray([str(c) for c in clusters], dtype=object), return_inverse=True)
    n_clusters = len(labels)
    nan = (float("nan"), float("nan"))
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, np.ndarray] = {}
    for name, vals in values.items():
        arr = np.asarray(vals, dtype=float)
        if arr.shape[0] != index.shape[0]:
            raise ValueError(f"{name}: {arr.shape[0]} values for {index.shape[0]} cluster labels")
        ok = ~np.isnan(arr)
        sums[name] = np.bincount(index[ok], weights=arr[ok], minlength=n_clusters)
        counts[name] = np.bincount(index[ok], minlength=n_clusters).astype(float)
    if n_clusters < 2 or n_boot < 1:
        return {name: nan for name in values}

    rng = np.random.default_rng(seed)
    replicates = {name: np.empty(n_boot) for name in values}
    uniform = np.full(n_clusters, 1.0 / n_clusters)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        weights = rng.multinomial(n_clusters, uniform, size=size).astype(float)
        for name in values:
            num = weights @ sums[name]
            den = weights @ counts[name]
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates[name][start : start + size] = np.where(den > 0, num / den, np.nan)

    alpha = 1.0 - confidence
    out: dict[str, tuple[float, float]] = {}
    for name, reps in replicates.items():
        if np.count_nonzero(counts[name]) < 2:
            out[name] = nan
            continue
        reps = reps[~np.isnan(reps)]
        low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
        out[name] = (float(low), float(high))
    return out


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order; NaN inputs stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()
