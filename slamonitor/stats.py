"""Binomial confidence bounds without SciPy: a rate's one-sided Clopper-Pearson upper bound."""

from __future__ import annotations

import math

_EPSILON = 1e-15
_MAX_TERMS = 100_000


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, _MAX_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < _EPSILON:
            return result
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The fraction converges fast only on one side of the mean; use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return float(math.exp(log_front) * _beta_fraction(a, b, x) / a)
    return float(1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b)


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1.0 - p)


def upper_bound(errors: int, trials: int, confidence: float = 0.95) -> float:
    """The largest rate still consistent, at ``confidence``, with ``errors`` in ``trials``."""
    if not 0 <= errors <= trials or trials == 0:
        raise ValueError(f"need 0 <= errors <= trials and trials > 0, not {errors}/{trials}")
    if errors == trials:
        return 1.0
    if errors == 0:
        return 1.0 - math.pow(1.0 - confidence, 1.0 / trials)
    low, high = errors / trials, 1.0
    # The CDF falls as p grows; bisect to the p where it equals 1 - confidence.
    for _ in range(200):
        middle = (low + high) / 2
        if binomial_cdf(errors, trials, middle) > 1.0 - confidence:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * high:
            break
    return high
