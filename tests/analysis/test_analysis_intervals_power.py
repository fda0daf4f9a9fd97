"""Wilson and cluster-bootstrap intervals, Holm, and McNemar power against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from videophy_bench.orchestrator.analysis.intervals import cluster_bootstrap, holm, wilson_ci
from videophy_bench.orchestrator.analysis.power import (
    mcnemar_mde,
    mcnemar_power,
    mcnemar_sample_size,
    paired_mean_mde,
)


def wilson_closed_form(k: int, n: int, z: float = stats.norm.ppf(0.975)) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(158, 600), (15, 180), (0, 12), (12, 12), (1, 3)])
def test_wilson_matches_closed_form(k, n):
    assert wilson_ci(k, n) == pytest.approx(wilson_closed_form(k, n), abs=1e-9)


def test_wilson_seed_baseline_and_empty():
    low, high = wilson_ci(158, 600)  # the seed's 26.3% joint; reference: [22.97, 30.00]
    assert (round(100 * low, 2), round(100 * high, 2)) == (22.97, 30.00)
    assert all(math.isnan(v) for v in wilson_ci(0, 0))


def test_bootstrap_is_reproducible_from_its_seed():
    rng = np.random.default_rng(5)
    values = {"x": rng.integers(0, 2, 300).astype(float), "y": rng.normal(3, 1, 300)}
    clusters = [f"a{i % 97}" for i in range(300)]
    first = cluster_bootstrap(values, clusters, n_boot=2000, seed=7)
    again = cluster_bootstrap(values, clusters, n_boot=2000, seed=7)
    other = cluster_bootstrap(values, clusters, n_boot=2000, seed=8)
    assert first == again
    assert first != other


def test_bootstrap_of_independent_items_is_close_to_wilson():
    values = np.array([1.0] * 158 + [0.0] * 442)
    low, high = cluster_bootstrap({"joint": values}, list(range(600)), n_boot=20_000, seed=0)["joint"]
    w_low, w_high = wilson_ci(158, 600)
    assert abs(low - w_low) < 0.006 and abs(high - w_high) < 0.006


def test_cluster_bootstrap_widens_with_correlated_clusters():
    # whole clusters pass or fail: 60 clusters of 10 identical items is like 60 items, not 600
    values = np.repeat(np.array([1.0] * 16 + [0.0] * 44), 10)
    clustered = cluster_bootstrap({"v": values}, np.repeat(np.arange(60), 10), n_boot=5000, seed=0)["v"]
    flat = cluster_bootstrap({"v": values}, np.arange(600), n_boot=5000, seed=0)["v"]
    assert (clustered[1] - clustered[0]) > 2.5 * (flat[1] - flat[0])


def test_bootstrap_ignores_nan_and_needs_two_clusters():
    out = cluster_bootstrap({"v": [1.0, np.nan, 0.0, 1.0]}, ["a", "a", "b", "c"], n_boot=500, seed=0)["v"]
    assert 0.0 <= out[0] <= out[1] <= 1.0
    single = cluster_bootstrap({"v": [1.0, 0.0]}, ["a", "a"], n_boot=500, seed=0)["v"]
    assert all(math.isnan(v) for v in single)
    with pytest.raises(ValueError):
        cluster_bootstrap({"v": [1.0]}, ["a", "b"])


def test_holm_known_answer():
    assert holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(holm([0.01, float("nan")])[1])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_mcnemar_power_reference_table():
    """phyt2v-and-statistics.md: n = 360, discordance 13.6%: 5 pp detected 73% of the time; 80% power needs
    about 1,185 prompts for 3 pp and 425 for 5 pp."""
    p_disc = 49 / 360
    assert mcnemar_power(360, p_disc, 0.05) == pytest.approx(0.73, abs=0.005)
    assert mcnemar_power(360, p_disc, 0.02) == pytest.approx(0.18, abs=0.005)
    assert math.ceil(mcnemar_sample_size(p_disc, 0.03)) == 1185
    assert math.ceil(mcnemar_sample_size(p_disc, 0.05)) == 425


def test_mde_inverts_power():
    mde = mcnemar_mde(360, 49 / 360)
    assert 0.05 < mde < 0.06
    assert mcnemar_power(360, 49 / 360, mde) == pytest.approx(0.80, abs=1e-6)
    assert mcnemar_sample_size(49 / 360, mde) == pytest.approx(360, rel=1e-4)
    assert math.isnan(mcnemar_mde(360, 0.0))
    assert paired_mean_mde(100, 1.0) == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / 10)
    assert math.isnan(paired_mean_mde(100, 0.0))
