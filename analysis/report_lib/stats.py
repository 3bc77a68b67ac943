"""Statistics of analysis/report.py, in numpy and the math module only: Student's t (two-sided p
from the regularised incomplete beta function, the 95% quantile), the paired t-test with its
95% CI, and Holm's step-down adjustment."""
import math

import numpy as np


def betacf(a, b, x):
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betainc(a, b, x):
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * betacf(b, a, 1 - x) / b


def t_two_sided_p(t, df):
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    if not math.isfinite(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile_975(df):
    """Two-sided 95% critical value, by bisection on t_two_sided_p."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_two_sided_p(mid, df) > 0.05:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def paired(diffs):
    """mean, std, 95% CI half-width, p (paired t-test), wins for a list of paired differences."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    out = {"n": n, "mean": float(d.mean()) if n else float("nan"), "wins": int((d > 0).sum())}
    if n >= 2:
        sd = float(d.std(ddof=1))
        out["std"] = sd
        se = sd / math.sqrt(n)
        out["ci95"] = t_quantile_975(n - 1) * se
        out["p"] = t_two_sided_p(out["mean"] / se, n - 1) if se > 0 else (0.0 if out["mean"] else 1.0)
    else:
        out["std"] = out["ci95"] = out["p"] = float("nan")
    return out


def holm(ps):
    """Holm's step-down adjustment of a family of p-values (same order as given): the i-th
    smallest p is multiplied by (m - i + 1), made monotone, capped at 1. Controls the chance of
    any false finding in the family at the nominal level."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adj, run_max = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        run_max = max(run_max, min(1.0, (m - rank) * ps[i]))
        adj[i] = run_max
    return adj
