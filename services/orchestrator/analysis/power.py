"""Power and minimum detectable effect (MDE) of paired comparisons.

Paired binary outcomes (joint pass) are tested with McNemar; its normal approximation gives, for ``n``
pairs, discordance rate ``p_disc`` (share of prompts whose outcome differs between the arms) and a true
difference ``delta`` of pass rates:

    power = Phi((|delta| * sqrt(n) - z_{1-alpha/2} * sqrt(p_disc)) / sqrt(p_disc - delta**2))

(Connor 1987). For paired means (SA, PC) the usual paired z approximation is used:
``mde = (z_{1-alpha/2} + z_power) * sd_diff / sqrt(n)``.
"""

from __future__ import annotations

import math

from scipy import optimize, stats

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80


def mcnemar_power(n: int, p_disc: float, delta: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Approximate power of the two-sided McNemar test; NaN when undefined (n = 0, delta**2 >= p_disc)."""
    delta = abs(delta)
    if n <= 0 or p_disc <= 0 or delta**2 >= p_disc:
        return float("nan")
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z = (delta * math.sqrt(n) - z_alpha * math.sqrt(p_disc)) / math.sqrt(p_disc - delta**2)
    return float(stats.norm.cdf(z))


def mcnemar_sample_size(
    p_disc: float, delta: float, power: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA
) -> float:
    """Pairs needed to detect ``delta`` with the given power (not rounded); NaN when undefined."""
    delta = abs(delta)
    if p_disc <= 0 or delta == 0 or delta**2 >= p_disc:
        return float("nan")
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_beta = stats.norm.ppf(power)
    return float((z_alpha * math.sqrt(p_disc) + z_beta * math.sqrt(p_disc - delta**2)) ** 2 / delta**2)


def mcnemar_mde(n: int, p_disc: float, power: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA) -> float:
    """Smallest |difference| in pass rate detected with ``power`` at ``n`` pairs; NaN if none is."""
    if n <= 0 or p_disc <= 0:
        return float("nan")
    upper = math.sqrt(p_disc) * (1 - 1e-12)
    if mcnemar_power(n, p_disc, upper, alpha) < power:
        return float("nan")
    return float(
        optimize.brentq(lambda d: mcnemar_power(n, p_disc, d, alpha) - power, 1e-12, upper, xtol=1e-10)
    )


def paired_mean_mde(
    n: int, sd_diff: float, power: float = DEFAULT_POWER, alpha: float = DEFAULT_ALPHA
) -> float:
    """Smallest |mean paired difference| detected with ``power`` (normal approximation).

    NaN when undefined: fewer than 2 pairs or no variation of the differences.
    """
    if n < 2 or not math.isfinite(sd_diff) or sd_diff <= 0:
        return float("nan")
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * sd_diff / math.sqrt(n))
