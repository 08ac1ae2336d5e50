"""Memory per operation, which action leaks, and where the growth leads.

A compressed soak runs many more operations per hour than production, so the slope per hour of a
5-minute run says little about a day in production; bytes per operation does. Each signal is
regressed on each cumulative operation count (OLS, standard error inflated for AR(1) residuals,
see trend.ols_ar1). When the mix of actions varies over the run, a multiple regression on all
counts attributes the growth to actions; with a constant mix the counts are collinear (they all
grow in proportion) and the report says the attribution is not identifiable.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.outliers_influence import variance_inflation_factor

from .trend import ols_ar1, persistence, slope_test
from memsoak.reports.settings import AnalysisSettings

# Belsley's rule of thumb: a condition number of the scaled design above 30 means the
# coefficients trade off against each other. (VIFs are reported too, but cumulative counts always
# share the run's time trend, so VIF > 10 is common even when a swept mix separates them well.)
MAX_CONDITION = 30.0
REQUEST_PREFIX = "request: "


@dataclass
class OpRate:
    op: str
    per_op: float        # signal units per operation
    ci_low: float
    ci_high: float
    p_value: float
    ops_in_window: float


@dataclass
class ActionShare:
    op: str
    per_op: float
    ci_low: float
    ci_high: float
    p_value: float
    vif: float
    growth: float        # per_op x operations in the window: this action's share of the growth


@dataclass
class Attribution:
    identifiable: bool
    reason: str
    condition_number: float
    actions: list[ActionShare] = field(default_factory=list)
    leaking: list[str] = field(default_factory=list)


def op_series(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Cumulative counts per operation: the `ops` dict, total requests, and each request name."""
    names: list[str] = []
    for row in rows:
        for name in (row.get("ops") or {}):
            if name not in names:
                names.append(name)
    series = {
        name: np.array([float((row.get("ops") or {}).get(name) or 0.0) for row in rows])
        for name in names
    }
    if any(row.get("requests_total") is not None for row in rows):
        series["requests"] = np.array([float(row.get("requests_total") or 0.0) for row in rows])
    request_names: list[str] = []
    for row in rows:
        for name in (row.get("requests_by_name") or {}):
            if name not in request_names:
                request_names.append(name)
    for name in request_names:
        series[REQUEST_PREFIX + name] = np.array(
            [float((row.get("requests_by_name") or {}).get(name) or 0.0) for row in rows])
    return {name: values for name, values in series.items() if np.ptp(values) > 0}


def per_op_rates(y: np.ndarray, counts: dict[str, np.ndarray]) -> list[OpRate]:
    rates = []
    for name, x in counts.items():
        fit = ols_ar1(x, y)
        if not math.isfinite(fit.se):
            continue
        low, high = fit.ci()
        rates.append(OpRate(name, fit.slope, low, high, fit.p_increasing, float(np.ptp(x))))
    return rates


# Counts a leak may follow, in the order tried; each test costs a Bonferroni factor.
LEAK_OPS = ("messages", "sessions_created", "requests")


@dataclass
class OpsTrend:
    op: str
    per_op: float        # signal units per operation
    p_value: float       # one-sided, Bonferroni-corrected over the counts tried
    method: str


def ops_trend(y: np.ndarray, counts: dict[str, np.ndarray]) -> OpsTrend | None:
    """Memory regressed on cumulative operations, its residuals as the noise.

    A leak that follows traffic is a random walk with drift in time (random traffic), but a straight
    line in cumulative operations: regressed on them, its residuals are the measurement noise, not
    the walk, and the slope test (trend.slope_test: GLS where the noise looks Gaussian) keeps its
    power. On a clean series the counts grow like time and the test behaves like the time one.
    """
    tried = [(name, counts[name]) for name in LEAK_OPS if name in counts and np.ptp(counts[name]) > 0]
    best: OpsTrend | None = None
    for name, x in tried:
        fit, method, _ = slope_test(np.asarray(x, float), np.asarray(y, float))
        if not math.isfinite(fit.se):
            continue
        p = min(1.0, fit.p_increasing * len(tried))
        if best is None or p < best.p_value:
            best = OpsTrend(name, fit.slope, p, method)
    return best


# When two actions move together (a user class that creates and ends sessions in lockstep), the
# later one in this order is folded into the earlier: leaks hide in creating and talking more
# often than in reading or ending.
ACTION_PRIORITY = ("messages", "sessions_created", "ws_messages", "session_reads", "sessions_deleted")


def _collinearity(x: np.ndarray) -> tuple[float, list[float]]:
    scaled = (x - x.mean(axis=0)) / x.std(axis=0)
    condition = float(np.linalg.cond(scaled))
    design = np.column_stack([np.ones(len(x)), x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vifs = [float(variance_inflation_factor(design, k + 1)) for k in range(x.shape[1])]
    return condition, vifs


def _detrended(values: np.ndarray) -> np.ndarray:
    steps = np.arange(len(values), dtype=float)
    return values - np.polyval(np.polyfit(steps, values, 1), steps)


def _separable(counts: dict[str, np.ndarray], names: list[str]) -> tuple[list[str], dict[str, str], float, list[float]]:
    """Fold actions that move together into one until the design is well conditioned."""
    rank = {name: ACTION_PRIORITY.index(name) if name in ACTION_PRIORITY else len(ACTION_PRIORITY) for name in names}
    folded: dict[str, str] = {}
    names = sorted(names, key=lambda name: rank[name])
    while True:
        condition, vifs = _collinearity(np.column_stack([counts[name] for name in names]))
        if len(names) < 3 or (math.isfinite(condition) and condition <= MAX_CONDITION):
            return names, folded, condition, vifs
        worst = names[int(np.nanargmax(vifs))]
        shape = _detrended(counts[worst])
        partner = max((n for n in names if n != worst),
                      key=lambda n: abs(float(np.corrcoef(shape, _detrended(counts[n]))[0, 1])))
        keep, drop = sorted((worst, partner), key=lambda name: rank[name])
        folded[drop] = keep
        names.remove(drop)


def which_action(y: np.ndarray, counts: dict[str, np.ndarray], alpha: float) -> Attribution:
    # Only the `ops` actions: total requests is their sum and per-name request counts repeat them.
    names = [name for name in counts if name != "requests" and not name.startswith(REQUEST_PREFIX)]
    if len(names) < 2:
        return Attribution(False, "fewer than two kinds of operation varied in the run", math.nan)
    names, folded, condition, vifs = _separable(counts, names)
    together = "; ".join(f"{drop} moves with {keep} (counted under {keep})" for drop, keep in folded.items())
    if not math.isfinite(condition) or condition > MAX_CONDITION:
        pairs = ", ".join(f"{n} VIF {v:.0f}" for n, v in zip(names, vifs))
        return Attribution(
            False,
            f"operation counts are collinear ({pairs}; condition number {condition:.0f}"
            f"{'; ' + together if together else ''}): the mix did not vary enough; sweep it "
            "(locustfiles' mix-sweep shape) to tell actions apart",
            condition,
        )
    worst = max(vifs)
    x = np.column_stack([counts[name] for name in names])
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    ss = float(resid @ resid)
    n, k = design.shape
    r1 = persistence(resid)
    n_eff = max(n * (1 - r1) / (1 + r1), k + 1.0)
    df = max(n_eff - k, 1.0)
    cov = np.linalg.pinv(design.T @ design) * ss / max(n_eff - k, 0.5)
    tq = stats.t.ppf(0.975, df)
    actions = []
    for idx, name in enumerate(names, start=1):
        se = math.sqrt(max(cov[idx, idx], 0.0))
        b = float(coef[idx])
        p = float(stats.t.sf(b / se, df)) if se > 0 else (0.0 if b > 0 else 1.0)
        actions.append(ActionShare(name, b, b - tq * se, b + tq * se, p, vifs[idx - 1],
                                   b * float(np.ptp(counts[name]))))
    actions.sort(key=lambda a: a.growth, reverse=True)
    leaking = [a.op for a in actions if a.p_value < alpha and a.per_op > 0]
    reason = f"max VIF {worst:.1f}, condition number {condition:.1f}" + (f"; {together}" if together else "")
    return Attribution(True, reason, condition, actions, leaking)


@dataclass
class Projection:
    hours: float
    at_observed_rate: float                 # signal units over the horizon
    at_production: dict[str, float] = field(default_factory=dict)   # "messages at 500/h" -> units
    time_to_limit_h: float | None = None    # RSS only


PROD_OPS = {"prod_sessions_per_hour": "sessions_created",
            "prod_messages_per_hour": "messages",
            "prod_requests_per_hour": "requests"}


def project(slope_per_h: float, rates: list[OpRate], settings: AnalysisSettings,
            level_now: float | None = None, limit: float | None = None) -> Projection:
    hours = settings.projection_hours
    by_op = {rate.op: rate for rate in rates}
    production = {}
    for setting, op in PROD_OPS.items():
        per_hour = float(getattr(settings, setting))
        if per_hour > 0 and op in by_op:
            production[f"{op} at {per_hour:g}/h"] = by_op[op].per_op * per_hour * hours
    to_limit = None
    if limit and level_now is not None and slope_per_h > 0:
        to_limit = max(limit - level_now, 0.0) / slope_per_h
    return Projection(hours, slope_per_h * hours, production, to_limit)
