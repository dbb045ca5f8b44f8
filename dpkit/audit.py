"""Membership-inference metrics, DP bounds on them, and empirical epsilon lower bounds.

Inputs follow scikit-learn: ``y_true`` marks members with 1 and non-members with 0,
and ``y_score`` is higher for examples the attack believes are members. Every
function is pure and works on numpy arrays.

The module has four parts:

* ROC metrics of an attack: :func:`roc`, :func:`auc`, :func:`tpr_at_fpr`,
  :func:`membership_advantage`, :func:`bootstrap_ci` and :func:`summarize`.
* Upper bounds that a DP guarantee puts on any attack: :func:`dp_roc_bound`,
  :func:`gdp_roc_bound`, :func:`advantage_bound`, :func:`gdp_advantage_bound`,
  with the Gaussian DP helpers :func:`dp_sgd_mu` and :func:`gdp_epsilon`.
* Empirical lower bounds on epsilon from attack results: :func:`clopper_pearson`
  and :func:`epsilon_lower_bound`.
* The one-run canary audit of Steinke, Nasr and Jagielski (2023):
  :func:`one_run_audit` and :func:`one_run_audit_best`.

A DP guarantee bounds every attack from above, and an audit bounds epsilon from
below. If an audit's lower bound exceeds the accountant's epsilon, the training
code or its accounting is wrong.
"""

import dataclasses
import math
import numbers
import warnings

import numpy as np
from scipy import optimize, special, stats
from sklearn import metrics as sk_metrics

from dpkit._checks import (
    DPKitWarning,
    check_choice,
    check_int,
    check_non_negative,
    check_open_unit,
    check_positive,
    check_unit_interval,
    invalid,
)
from dpkit.mechanisms import _gaussian_delta

__all__ = [
    "EpsilonBound",
    "OneRunAuditResult",
    "advantage_bound",
    "auc",
    "bootstrap_ci",
    "clopper_pearson",
    "dp_roc_bound",
    "dp_sgd_mu",
    "epsilon_lower_bound",
    "gdp_advantage_bound",
    "gdp_epsilon",
    "gdp_roc_bound",
    "membership_advantage",
    "one_run_audit",
    "one_run_audit_best",
    "roc",
    "summarize",
    "tpr_at_fpr",
]


# ---------------------------------------------------------------------------
# input checks


def _as_labels(name, y_true):
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise invalid(name, "a 1-D array", f"an array of shape {labels.shape}", "Pass one label per example.")
    if labels.dtype == bool:
        return labels
    if labels.dtype.kind not in "iuf" or not np.all(np.isin(labels, (0, 1))):
        found = np.unique(labels)[:5].tolist() if labels.dtype.kind in "iufUS" else labels.dtype
        raise invalid(
            name,
            "binary (1 or True for members, 0 or False for non-members)",
            f"values {found}",
            "Encode members as 1 and non-members as 0.",
        )
    return labels.astype(bool)


def _as_scores(name, y_score):
    try:
        scores = np.asarray(y_score, dtype=float)
    except (TypeError, ValueError):
        raise invalid(name, "an array of real numbers", y_score, "Pass numeric attack scores.") from None
    if scores.ndim != 1:
        raise invalid(name, "a 1-D array", f"an array of shape {scores.shape}", "Pass one score per example.")
    if np.isnan(scores).any():
        raise invalid(
            name,
            "free of NaN",
            f"{int(np.isnan(scores).sum())} NaN values",
            "Drop those examples or give them the lowest score.",
        )
    if np.isinf(scores).any():
        raise invalid(
            name,
            "finite",
            f"{int(np.isinf(scores).sum())} infinite values",
            "Replace them with large finite values, e.g. np.nan_to_num(y_score), which keeps the ranking.",
        )
    return scores


def _check_pair(y_true, y_score, *, true_name="y_true", score_name="y_score", both_classes=True):
    labels = _as_labels(true_name, y_true)
    scores = _as_scores(score_name, y_score)
    if labels.shape != scores.shape:
        raise ValueError(
            f"{true_name} and {score_name} must have the same length, got {labels.size} and {scores.size}. "
            "Pass one label and one score per example."
        )
    if both_classes:
        n_members = int(labels.sum())
        if n_members == 0 or n_members == labels.size:
            raise invalid(
                true_name,
                "a mix of members (1) and non-members (0)",
                f"{n_members} members out of {labels.size} examples",
                "The metrics compare the two groups, so include at least one example of each.",
            )
    return labels, scores


def _check_fpr(fpr, name="fpr"):
    try:
        targets = np.asarray(fpr, dtype=float)
    except (TypeError, ValueError):
        targets = None
    valid = targets is not None and targets.ndim <= 1 and targets.size > 0
    if not valid or np.isnan(targets).any() or not np.all((targets > 0) & (targets < 1)):
        raise invalid(name, "a number or 1-D array in the open interval (0, 1)", fpr, "Use 0.001 for an FPR of 0.1%.")
    return targets


def _check_curve_fpr(fpr):
    # Bound curves are drawn over the whole axis, so 0 and 1 are allowed here.
    try:
        points = np.asarray(fpr, dtype=float)
    except (TypeError, ValueError):
        points = None
    if points is None or np.isnan(points).any() or not np.all((points >= 0) & (points <= 1)):
        raise invalid("fpr", "a number or array in [0, 1]", fpr, "Pass false positive rates, e.g. np.linspace(0, 1, 101).")
    return points


def _check_epsilon(epsilon):
    return check_non_negative("epsilon", epsilon, "Use the epsilon of the guarantee, a finite number >= 0.")


def _check_delta(delta):
    fix = "Use delta=0 for pure DP or a small delta such as 1e-5."
    return check_unit_interval("delta", delta, fix, low_open=False, high_open=True)


def _check_mu(mu):
    return check_non_negative("mu", mu, "Use the mu of the mu-GDP guarantee, a finite number >= 0 (see dp_sgd_mu).")


def _check_confidence(confidence):
    return check_open_unit("confidence", confidence, "Use confidence=0.95 for a 95% bound.")


def _as_output(values):
    return float(values) if np.ndim(values) == 0 else values


# ---------------------------------------------------------------------------
# ROC metrics


def _roc_points(labels, scores):
    # Every threshold is kept (drop_intermediate=False): with tied scores, points on
    # a diagonal ROC segment are real operating points, and dropping them would
    # lower the TPR reached at some FPRs.
    fpr, tpr, thresholds = sk_metrics.roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def _tpr_at(fpr_points, tpr_points, targets):
    # FPR and TPR both grow along the curve, so the best point at or below a
    # target FPR is the last one there.
    last = np.searchsorted(fpr_points, targets, side="right") - 1
    return tpr_points[last]


def roc(y_true, y_score, *, drop_intermediate=False):
    """Compute the ROC curve of a membership-inference attack.

    A thin wrapper around :func:`sklearn.metrics.roc_curve` that checks the inputs
    and keeps every threshold by default.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 (or True) for members, 0 (or False) for non-members. Both must occur.
    y_score : array_like of shape (n,)
        Attack scores, higher for members. Finite.
    drop_intermediate : bool, default False
        Drop points on straight segments of the curve (smaller plots). Keep the
        default when reading TPR at a fixed FPR from the result.

    Returns
    -------
    fpr : numpy.ndarray of shape (k,)
        False positive rates, increasing, from 0 to 1.
    tpr : numpy.ndarray of shape (k,)
        True positive rates, increasing, from 0 to 1.
    thresholds : numpy.ndarray of shape (k,)
        Decreasing thresholds: point ``i`` predicts "member" for ``y_score >= thresholds[i]``.
        ``thresholds[0]`` is ``inf`` (predict nobody).

    Examples
    --------
    >>> fpr, tpr, thresholds = roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    labels, scores = _check_pair(y_true, y_score)
    return sk_metrics.roc_curve(labels, scores, drop_intermediate=bool(drop_intermediate))


def auc(y_true, y_score):
    """Compute the area under the ROC curve (:func:`sklearn.metrics.roc_auc_score`).

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 for members, 0 for non-members. Both must occur.
    y_score : array_like of shape (n,)
        Attack scores, higher for members.

    Returns
    -------
    float
        AUC in [0, 1]: 0.5 for a random guess or constant scores, 1 for perfect
        separation. Ties count one half.

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    labels, scores = _check_pair(y_true, y_score)
    return float(sk_metrics.roc_auc_score(labels, scores))


def _warn_coarse_fpr(targets, n_non_members):
    too_small = targets[targets * n_non_members < 1]
    if too_small.size:
        warnings.warn(
            f"TPR at FPR={too_small.min():g} uses only thresholds with no false positives, because there are "
            f"only {n_non_members} non-members. Use at least {int(math.ceil(1 / too_small.min()))} non-members "
            "for a meaningful value.",
            DPKitWarning,
            stacklevel=3,
        )


def tpr_at_fpr(y_true, y_score, *, fpr=0.001):
    """Return the highest true positive rate among thresholds with FPR at most ``fpr``.

    Only thresholds that the data realizes are used: the result is the TPR of the
    last ROC point whose FPR is <= ``fpr``, with no linear interpolation between
    points. Interpolation would describe a randomized test that flips a coin
    between two thresholds. The value here is what a single threshold reaches,
    so it never exceeds the interpolated one.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 for members, 0 for non-members. Both must occur.
    y_score : array_like of shape (n,)
        Attack scores, higher for members.
    fpr : float or array_like, default 0.001
        Target false positive rate(s), in (0, 1).

    Returns
    -------
    float or numpy.ndarray
        TPR in [0, 1], one per target.

    Warns
    -----
    DPKitWarning
        When ``fpr`` is below ``1 / n_non_members``: then only thresholds with no
        false positive at all qualify, and the value is coarse.

    Examples
    --------
    >>> tpr_at_fpr([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], fpr=0.5)
    1.0
    """
    labels, scores = _check_pair(y_true, y_score)
    targets = _check_fpr(fpr)
    _warn_coarse_fpr(np.atleast_1d(targets), int((~labels).sum()))

    fpr_points, tpr_points, _ = _roc_points(labels, scores)
    return _as_output(_tpr_at(fpr_points, tpr_points, targets))


def membership_advantage(y_true, y_score):
    """Return the membership advantage ``max over thresholds of (TPR - FPR)``.

    This is Youden's J statistic of the attack. It equals ``2 * accuracy - 1`` of
    the best threshold on a balanced member/non-member set.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 for members, 0 for non-members. Both must occur.
    y_score : array_like of shape (n,)
        Attack scores, higher for members.

    Returns
    -------
    float
        Advantage in [0, 1]. It is 0 for constant scores, because predicting
        nobody (or everybody) reaches TPR - FPR = 0.

    Examples
    --------
    >>> membership_advantage([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.5
    """
    labels, scores = _check_pair(y_true, y_score)
    fpr_points, tpr_points, _ = _roc_points(labels, scores)
    return float(np.max(tpr_points - fpr_points))


# ---------------------------------------------------------------------------
# bootstrap confidence intervals


def _check_bootstrap_settings(n_bootstrap, confidence, seed):
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, "Use at least 1000 resamples for a stable interval.", minimum=10)
    confidence = _check_confidence(confidence)
    seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
    return n_bootstrap, confidence, seed


def _stratified_bootstrap(labels, scores, statistic, n_bootstrap, confidence, seed):
    # scipy resamples each sample separately when paired=False, so members and
    # non-members keep their counts in every resample (a stratified bootstrap).
    # The percentile method is used because BCa needs a jackknife pass, one
    # metric evaluation per example, which is too slow for large attacks.
    n_members = int(labels.sum())

    def on_resample(member_scores, non_member_scores):
        resampled_scores = np.concatenate([member_scores, non_member_scores])
        resampled_labels = np.arange(resampled_scores.size) < n_members
        return statistic(resampled_labels, resampled_scores)

    result = stats.bootstrap(
        (scores[labels], scores[~labels]),
        on_resample,
        n_resamples=n_bootstrap,
        confidence_level=confidence,
        method="percentile",
        paired=False,
        vectorized=False,
        batch=50,
        rng=np.random.default_rng(seed),
    )
    return result.confidence_interval.low, result.confidence_interval.high


def bootstrap_ci(y_true, y_score, metric, *, n_bootstrap=1000, confidence=0.95, seed=0):
    """Compute a stratified percentile bootstrap confidence interval for an attack metric.

    Members and non-members are resampled separately, with replacement, so every
    resample keeps the original number of each (both classes are always present).
    The interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of the metric over the resamples (:func:`scipy.stats.bootstrap`,
    method "percentile").

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 for members, 0 for non-members. Both must occur.
    y_score : array_like of shape (n,)
        Attack scores, higher for members.
    metric : callable
        ``metric(y_true, y_score) -> float``, for example :func:`auc`,
        :func:`membership_advantage` or ``functools.partial(tpr_at_fpr, fpr=0.01)``.
    n_bootstrap : int, default 1000
        Number of resamples, >= 10.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int, default 0
        Seed of the resampling; the same seed gives the same interval.

    Returns
    -------
    (float, float)
        ``(low, high)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y_true = np.repeat([1, 0], 500)
    >>> y_score = rng.normal(size=1000) + y_true
    >>> low, high = bootstrap_ci(y_true, y_score, auc, n_bootstrap=200)
    >>> bool(low < auc(y_true, y_score) < high)
    True
    """
    labels, scores = _check_pair(y_true, y_score)
    if not callable(metric):
        raise invalid("metric", "a callable metric(y_true, y_score) -> float", metric, "Pass dpkit.audit.auc, for example.")
    n_bootstrap, confidence, seed = _check_bootstrap_settings(n_bootstrap, confidence, seed)

    # One call on the full data surfaces the metric's own errors and caveats once,
    # instead of once per resample.
    point = metric(labels.astype(np.int64), scores)
    if not isinstance(point, numbers.Real) or not math.isfinite(point):
        raise invalid("metric", "a callable that returns a finite number", point, "Return a float from the metric.")

    def statistic(resampled_labels, resampled_scores):
        return float(metric(resampled_labels.astype(np.int64), resampled_scores))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPKitWarning)
        low, high = _stratified_bootstrap(labels, scores, statistic, n_bootstrap, confidence, seed)
    return float(low), float(high)


def _fpr_key(target):
    return f"tpr@{target * 100:g}%"


def summarize(y_true, y_score, *, fprs=(0.001, 0.01), ci=True, n_bootstrap=1000, confidence=0.95, seed=0):
    """Summarize an attack in one flat dict, ready for a table row.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 for members, 0 for non-members. Both must occur.
    y_score : array_like of shape (n,)
        Attack scores, higher for members.
    fprs : sequence of float, default (0.001, 0.01)
        FPRs at which to report the TPR (see :func:`tpr_at_fpr`), each in (0, 1).
    ci : bool, default True
        Add stratified bootstrap intervals (see :func:`bootstrap_ci`).
    n_bootstrap : int, default 1000
        Number of resamples for the intervals.
    confidence : float, default 0.95
        Coverage of the intervals.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    dict
        ``n_members``, ``n_non_members``, ``auc``, ``advantage`` and one
        ``"tpr@<fpr in percent>%"`` entry per FPR (``"tpr@0.1%"``, ``"tpr@1%"``).
        With ``ci=True`` each metric also gets ``<name>_low`` and ``<name>_high``
        entries, and ``confidence`` and ``n_bootstrap`` are recorded.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y_true = np.repeat([1, 0], 1000)
    >>> row = summarize(y_true, rng.normal(size=2000) + y_true, n_bootstrap=100)
    >>> sorted(row)[:4]
    ['advantage', 'advantage_high', 'advantage_low', 'auc']
    >>> bool(row["auc_low"] < row["auc"] < row["auc_high"])
    True
    """
    labels, scores = _check_pair(y_true, y_score)
    targets = np.atleast_1d(_check_fpr(fprs, "fprs"))
    if ci:
        n_bootstrap, confidence, seed = _check_bootstrap_settings(n_bootstrap, confidence, seed)
    _warn_coarse_fpr(targets, int((~labels).sum()))

    names = ["auc"] + [_fpr_key(target) for target in targets] + ["advantage"]

    def all_metrics(metric_labels, metric_scores):
        fpr_points, tpr_points, _ = _roc_points(metric_labels, metric_scores)
        area = np.trapezoid(tpr_points, fpr_points)
        advantage = np.max(tpr_points - fpr_points)
        return np.concatenate([[area], _tpr_at(fpr_points, tpr_points, targets), [advantage]])

    row = {"n_members": int(labels.sum()), "n_non_members": int((~labels).sum())}
    row.update(zip(names, (float(value) for value in all_metrics(labels, scores))))
    if ci:
        lows, highs = _stratified_bootstrap(labels, scores, all_metrics, n_bootstrap, confidence, seed)
        for name, low, high in zip(names, lows, highs):
            row[f"{name}_low"] = float(low)
            row[f"{name}_high"] = float(high)
        row["confidence"] = confidence
        row["n_bootstrap"] = n_bootstrap
    return row


# ---------------------------------------------------------------------------
# bounds that a DP guarantee puts on every attack


def dp_roc_bound(fpr, *, epsilon, delta=0.0):
    """Return the highest TPR any membership test can reach against an (epsilon, delta)-DP mechanism.

    (epsilon, delta)-DP holds exactly when every test with type I error ``a``
    (FPR) and type II error ``b`` (1 - TPR) satisfies ``a + exp(eps) * b >= 1 - delta``
    and ``exp(eps) * a + b >= 1 - delta`` (Kairouz, Oh and Viswanath, "The
    Composition Theorem for Differential Privacy", ICML 2015). Solving both for the TPR::

        TPR <= min(1, exp(eps) * FPR + delta, 1 - exp(-eps) * (1 - delta - FPR))

    Parameters
    ----------
    fpr : float or array_like
        False positive rates in [0, 1].
    epsilon : float
        Finite, >= 0.
    delta : float, default 0.0
        In [0, 1).

    Returns
    -------
    float or numpy.ndarray, same shape as ``fpr``
        The TPR bound in [0, 1].

    Examples
    --------
    >>> round(dp_roc_bound(0.1, epsilon=math.log(3)), 12)
    0.3
    >>> dp_roc_bound([0.0, 0.5, 1.0], epsilon=0.0).tolist()
    [0.0, 0.5, 1.0]
    """
    points = _check_curve_fpr(fpr)
    epsilon = _check_epsilon(epsilon)
    delta = _check_delta(delta)

    direct = math.exp(epsilon) * points + delta
    complement = 1.0 - math.exp(-epsilon) * (1.0 - delta - points)
    return _as_output(np.minimum(1.0, np.minimum(direct, complement)))


def gdp_roc_bound(fpr, *, mu):
    """Return the highest TPR any membership test can reach against a mu-GDP mechanism.

    mu-Gaussian DP (Dong, Roth and Su, "Gaussian Differential Privacy", JRSS-B 2022)
    means no test is better than telling ``N(0, 1)`` from ``N(mu, 1)``, whose ROC
    curve is ``TPR = Phi(Phi^-1(FPR) + mu)``.

    Parameters
    ----------
    fpr : float or array_like
        False positive rates in [0, 1].
    mu : float
        Finite, >= 0.

    Returns
    -------
    float or numpy.ndarray, same shape as ``fpr``
        The TPR bound in [0, 1].

    Examples
    --------
    >>> round(gdp_roc_bound(0.5, mu=1.0), 4)
    0.8413
    """
    points = _check_curve_fpr(fpr)
    mu = _check_mu(mu)
    return _as_output(special.ndtr(special.ndtri(points) + mu))


def advantage_bound(*, epsilon, delta=0.0):
    """Return the highest membership advantage (TPR - FPR) under (epsilon, delta)-DP.

    The maximum of ``dp_roc_bound(fpr) - fpr`` sits at the corner of the region,
    ``fpr = (1 - delta) / (exp(eps) + 1)``, and equals::

        (exp(eps) - 1 + 2 * delta) / (exp(eps) + 1)

    For pure DP this is ``tanh(eps / 2)``, tighter than the ``exp(eps) - 1`` of
    Yeom et al. (2018).

    Parameters
    ----------
    epsilon : float
        Finite, >= 0.
    delta : float, default 0.0
        In [0, 1).

    Returns
    -------
    float
        Advantage bound in [0, 1).

    Examples
    --------
    >>> round(advantage_bound(epsilon=math.log(3)), 12)
    0.5
    """
    epsilon = _check_epsilon(epsilon)
    delta = _check_delta(delta)
    # Divide through by exp(eps) so that large epsilons do not overflow.
    shrink = math.exp(-epsilon)
    return float((1.0 - shrink + 2.0 * delta * shrink) / (1.0 + shrink))


def gdp_advantage_bound(mu):
    """Return the highest membership advantage (TPR - FPR) under mu-GDP: ``2 * Phi(mu / 2) - 1``.

    Parameters
    ----------
    mu : float
        Finite, >= 0.

    Returns
    -------
    float
        Advantage bound in [0, 1).

    Examples
    --------
    >>> round(gdp_advantage_bound(1.0), 4)
    0.3829
    """
    mu = _check_mu(mu)
    return float(2.0 * special.ndtr(mu / 2.0) - 1.0)


def dp_sgd_mu(*, noise_multiplier, sample_rate, steps):
    """Return the mu-GDP parameter of DP-SGD from the central limit theorem.

    ``mu = sample_rate * sqrt(steps * (exp(1 / noise_multiplier**2) - 1))`` for
    Poisson sampling (Bu, Dong, Long and Su, "Deep Learning with Gaussian
    Differential Privacy", 2020). Opacus's ``gdp`` accountant uses the same
    formula (``opacus.accountants.analysis.gdp.compute_mu_poisson``, Opacus 1.6).

    NOTE: this is a limit as ``steps`` grows with ``sample_rate * sqrt(steps)``
    fixed, not a bound. It can underestimate the privacy loss for few steps or a
    large sample rate. Use ``dpkit.privacy.epsilon`` with ``accountant="rdp"`` or
    ``"prv"`` for a guarantee.

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation over ``max_grad_norm``, > 0.
    sample_rate : float
        Poisson sampling probability per step, in (0, 1].
    steps : int
        Number of optimizer steps, >= 1.

    Returns
    -------
    float
        mu >= 0 (``inf`` when ``1 / noise_multiplier**2`` overflows ``exp``).

    Examples
    --------
    >>> round(dp_sgd_mu(noise_multiplier=1.0, sample_rate=0.01, steps=10_000), 4)
    1.3108
    """
    noise_multiplier = check_positive("noise_multiplier", noise_multiplier, "Use a noise multiplier > 0, e.g. 1.0.")
    sample_rate = check_unit_interval("sample_rate", sample_rate, "Use batch_size / dataset size, a number in (0, 1].")
    steps = check_int("steps", steps, "Pass the number of optimizer steps, at least 1.")

    exponent = noise_multiplier ** -2
    if exponent > 700:
        return math.inf
    return float(sample_rate * math.sqrt(steps * math.expm1(exponent)))


def gdp_epsilon(*, mu, delta):
    """Convert mu-GDP to the smallest epsilon with (epsilon, delta)-DP.

    Solves ``delta = Phi(mu/2 - eps/mu) - exp(eps) * Phi(-mu/2 - eps/mu)`` for eps
    with :func:`scipy.optimize.brentq` (Dong, Roth and Su 2022). The
    same conversion gives Opacus's ``gdp`` accountant epsilon from its mu.

    Parameters
    ----------
    mu : float
        Finite, >= 0.
    delta : float
        In (0, 1).

    Returns
    -------
    float
        epsilon >= 0; 0 when ``delta`` alone already covers the mechanism.

    Examples
    --------
    >>> round(gdp_epsilon(mu=1.0, delta=1e-5), 3)
    4.377
    """
    mu = _check_mu(mu)
    delta = check_open_unit("delta", delta, "Use a small delta such as 1e-5.")
    if mu == 0 or _gaussian_delta(0.0, mu) <= delta:
        return 0.0

    def excess(epsilon):
        return _gaussian_delta(epsilon, mu) - delta

    high = 1.0
    while excess(high) > 0:
        high *= 2.0
    epsilon = optimize.brentq(excess, 0.0, high, xtol=1e-12, rtol=4 * np.finfo(float).eps)
    # Round up so that the reported epsilon is never below the exact one.
    while excess(epsilon) > 0:
        epsilon = np.nextafter(epsilon, math.inf) + 1e-12
    return float(epsilon)


# ---------------------------------------------------------------------------
# Clopper-Pearson intervals


def _cp_lower(successes, trials, alpha):
    # One-sided lower bound at level 1 - alpha: the alpha quantile of Beta(k, n - k + 1).
    successes = np.asarray(successes)
    with np.errstate(invalid="ignore"):
        bound = stats.beta.ppf(alpha, successes, trials - successes + 1)
    return np.where(successes == 0, 0.0, bound)


def _cp_upper(successes, trials, alpha):
    # One-sided upper bound at level 1 - alpha: the 1 - alpha quantile of Beta(k + 1, n - k).
    successes = np.asarray(successes)
    with np.errstate(invalid="ignore"):
        bound = stats.beta.ppf(1 - alpha, successes + 1, trials - successes)
    return np.where(successes == trials, 1.0, bound)


def clopper_pearson(successes, trials, *, confidence=0.95, alternative="two-sided"):
    """Compute exact Clopper-Pearson confidence bounds for a binomial proportion.

    Matches ``scipy.stats.binomtest(k, n, alternative=...).proportion_ci(method="exact")``
    and works on arrays.

    Parameters
    ----------
    successes : int or array_like of int
        Number of successes, between 0 and ``trials``.
    trials : int
        Number of trials, >= 1.
    confidence : float, default 0.95
        Coverage, in (0, 1).
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        As in scipy: "greater" returns a one-sided lower bound (and 1 as the upper
        end), "less" a one-sided upper bound (and 0 as the lower end).

    Returns
    -------
    (low, high)
        Floats, or arrays shaped like ``successes``.

    Examples
    --------
    >>> low, high = clopper_pearson(0, 10, alternative="less")
    >>> low, round(high, 4)
    (0.0, 0.2589)
    """
    trials = check_int("trials", trials, "Pass the number of trials, at least 1.")
    counts = np.asarray(successes)
    if counts.dtype.kind not in "iu" or np.any(counts < 0) or np.any(counts > trials):
        raise invalid("successes", f"integers between 0 and trials={trials}", successes, "Pass counts of successes.")
    confidence = _check_confidence(confidence)
    alternative = check_choice("alternative", alternative, ("two-sided", "greater", "less"))

    alpha = 1.0 - confidence
    if alternative == "two-sided":
        low, high = _cp_lower(counts, trials, alpha / 2), _cp_upper(counts, trials, alpha / 2)
    elif alternative == "greater":
        low, high = _cp_lower(counts, trials, alpha), np.ones(counts.shape)
    else:
        low, high = np.zeros(counts.shape), _cp_upper(counts, trials, alpha)
    return _as_output(low), _as_output(high)


# ---------------------------------------------------------------------------
# empirical epsilon lower bound from a threshold attack


@dataclasses.dataclass(frozen=True)
class EpsilonBound:
    """Empirical lower bound on epsilon from a threshold membership test.

    Attributes
    ----------
    epsilon : float
        The lower bound, >= 0. If the mechanism were (epsilon', delta)-DP for
        some epsilon' below it, a bound this high would occur with probability
        at most ``1 - confidence``.
    threshold : float
        The test predicts "member" for scores >= threshold.
    tpr, fpr : float
        Observed rates of the test on the evaluation examples.
    tpr_low, fpr_high : float
        Clopper-Pearson bounds that hold together with probability ``confidence``.
    true_positives, false_positives : int
        Counts on the evaluation examples.
    n_members, n_non_members : int
        Number of evaluation examples in each group. With ``method="split"``
        these are the held-out half, not the whole input.
    confidence, delta : float
        The settings the bound was computed for.
    method : str
        "split", "bonferroni" or "fixed".
    """

    epsilon: float
    threshold: float
    tpr: float
    fpr: float
    tpr_low: float
    fpr_high: float
    true_positives: int
    false_positives: int
    n_members: int
    n_non_members: int
    confidence: float
    delta: float
    method: str


def _threshold_counts(labels, scores, thresholds):
    member_scores = np.sort(scores[labels])
    non_member_scores = np.sort(scores[~labels])
    true_positives = member_scores.size - np.searchsorted(member_scores, thresholds, side="left")
    false_positives = non_member_scores.size - np.searchsorted(non_member_scores, thresholds, side="left")
    return true_positives, false_positives


def _epsilon_from_counts(true_positives, false_positives, n_members, n_non_members, delta, alpha_members, alpha_non_members):
    # DP bounds TPR <= e^eps FPR + delta and TNR <= e^eps FNR + delta. Plugging in
    # a lower bound on TPR and an upper bound on FPR (so TNR >= 1 - fpr_high and
    # FNR <= 1 - tpr_low) gives the largest epsilon the data rules out.
    tpr_low = _cp_lower(true_positives, n_members, alpha_members)
    fpr_high = _cp_upper(false_positives, n_non_members, alpha_non_members)
    with np.errstate(divide="ignore"):
        direct = np.log(np.maximum(tpr_low - delta, 0.0)) - np.log(fpr_high)
        flipped = np.log(np.maximum(1.0 - fpr_high - delta, 0.0)) - np.log(1.0 - tpr_low)
    epsilon = np.maximum(np.maximum(direct, flipped), 0.0)
    return epsilon, tpr_low, fpr_high


def _stratified_halves(labels, fraction, rng):
    calibration = np.zeros(labels.size, dtype=bool)
    for group in (np.flatnonzero(labels), np.flatnonzero(~labels)):
        n_calibration = min(max(int(round(fraction * group.size)), 1), group.size - 1)
        calibration[rng.permutation(group)[:n_calibration]] = True
    return calibration


def epsilon_lower_bound(
    y_true,
    y_score,
    *,
    delta,
    confidence=0.95,
    threshold=None,
    method=None,
    calibration_fraction=0.5,
    seed=0,
):
    """Compute a lower bound on epsilon that holds with probability ``confidence``.

    A threshold test "member if score >= t" with true positive rate TPR and false
    positive rate FPR shows that the mechanism is not (eps, delta)-DP for any eps
    below ``max(log((TPR - delta) / FPR), log((TNR - delta) / FNR))``, because DP
    requires ``TPR <= e^eps FPR + delta`` and ``TNR <= e^eps FNR + delta``. The
    observed rates are replaced by one-sided Clopper-Pearson bounds (lower for
    TPR, upper for FPR), each at level ``(1 - confidence) / 2``, so that the
    reported epsilon never exceeds what the confidence bound supports.

    Choosing the threshold on the same data that evaluates it would be optimistic.
    The methods avoid that:

    * ``"split"`` (default): a stratified random ``calibration_fraction`` of the
      members and of the non-members picks the threshold with the largest bound;
      the remaining examples evaluate that one threshold.
    * ``"bonferroni"``: every threshold is evaluated on all the data and the best
      one is reported, with the failure probability shared out: level
      ``(1 - confidence) / (2 * (n_non_members + 1))`` for the FPR bounds and
      ``(1 - confidence) / (2 * (n_members + 1))`` for the TPR bounds. A
      threshold test's FPR bound can only fail in one of ``n_non_members + 1``
      ways (one per number of false positives), and likewise for the TPR, so
      the union bound covers all thresholds at once, including data-dependent ones.
    * ``"fixed"``: the given ``threshold`` is evaluated on all the data. Used
      automatically when ``threshold`` is given; the threshold must not have
      been chosen on these data.

    NOTE: the Clopper-Pearson bounds treat every example as an independent
    trial, as when each score comes from its own training run (or from a
    mechanism applied per example, such as randomized response). Scores of many
    members and non-members of one training run are not independent trials, so
    for them the result is an estimate, not a guarantee; use
    :func:`one_run_audit` with randomly included canaries for a guarantee from
    one run.

    Parameters
    ----------
    y_true : array_like of shape (n,)
        1 for members, 0 for non-members. Both must occur (at least two of each
        for ``"split"``).
    y_score : array_like of shape (n,)
        Attack scores, higher for members.
    delta : float
        The delta of the guarantee being tested, in [0, 1).
    confidence : float, default 0.95
        Probability that the bound holds, in (0, 1).
    threshold : float or None, default None
        A threshold fixed in advance (method "fixed").
    method : {"split", "bonferroni", "fixed"} or None, default None
        How the threshold is chosen; None means "fixed" when ``threshold`` is
        given and "split" otherwise.
    calibration_fraction : float, default 0.5
        Share of each group used to choose the threshold with "split", in (0, 1).
    seed : int, default 0
        Seed of the "split" partition.

    Returns
    -------
    EpsilonBound

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y_true = np.repeat([1, 0], 5000)
    >>> y_score = rng.normal(size=10_000) + 2 * y_true  # the scores of a 2-GDP mechanism
    >>> bound = epsilon_lower_bound(y_true, y_score, delta=1e-5)
    >>> bool(1.0 < bound.epsilon < gdp_epsilon(mu=2.0, delta=1e-5)), bound.method
    (True, 'split')
    """
    labels, scores = _check_pair(y_true, y_score)
    delta = _check_delta(delta)
    confidence = _check_confidence(confidence)
    if method is None:
        method = "split" if threshold is None else "fixed"
    method = check_choice("method", method, ("split", "bonferroni", "fixed"))
    if (method == "fixed") != (threshold is not None):
        raise invalid(
            "threshold",
            'a number with method="fixed" and None otherwise',
            threshold,
            'Pass threshold with method="fixed" (or method=None), or drop threshold so that "split" or '
            '"bonferroni" chooses it.',
        )
    calibration_fraction = check_open_unit(
        "calibration_fraction", calibration_fraction, "Use 0.5 to choose the threshold on half of the data."
    )
    seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
    alpha = 1.0 - confidence

    if method == "fixed":
        if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or math.isnan(threshold):
            raise invalid("threshold", "a real number", threshold, "Pass the score above which the test predicts a member.")
        return _evaluate_threshold(labels, scores, float(threshold), delta, confidence, method, alpha / 2, alpha / 2)

    if method == "bonferroni":
        n_members = int(labels.sum())
        alpha_members = alpha / (2 * (n_members + 1))
        alpha_non_members = alpha / (2 * (labels.size - n_members + 1))
        chosen = _best_threshold(labels, scores, delta, alpha_members, alpha_non_members)
        return _evaluate_threshold(labels, scores, chosen, delta, confidence, method, alpha_members, alpha_non_members)

    n_members = int(labels.sum())
    if n_members < 2 or labels.size - n_members < 2:
        raise invalid(
            "y_true",
            'at least two members and two non-members for method="split"',
            f"{n_members} members and {labels.size - n_members} non-members",
            'Add examples, or use method="bonferroni".',
        )
    calibration = _stratified_halves(labels, calibration_fraction, np.random.default_rng(seed))
    chosen = _best_threshold(labels[calibration], scores[calibration], delta, alpha / 2, alpha / 2)

    held_out = ~calibration
    return _evaluate_threshold(labels[held_out], scores[held_out], chosen, delta, confidence, method, alpha / 2, alpha / 2)


def _best_threshold(labels, scores, delta, alpha_members, alpha_non_members):
    candidates = np.unique(scores)
    true_positives, false_positives = _threshold_counts(labels, scores, candidates)
    epsilons, _, _ = _epsilon_from_counts(
        true_positives,
        false_positives,
        int(labels.sum()),
        int((~labels).sum()),
        delta,
        alpha_members,
        alpha_non_members,
    )
    return float(candidates[int(np.argmax(epsilons))])


def _evaluate_threshold(labels, scores, threshold, delta, confidence, method, alpha_members, alpha_non_members):
    n_members = int(labels.sum())
    n_non_members = labels.size - n_members

    true_positives, false_positives = _threshold_counts(labels, scores, np.array([threshold]))
    epsilon, tpr_low, fpr_high = _epsilon_from_counts(
        true_positives, false_positives, n_members, n_non_members, delta, alpha_members, alpha_non_members
    )
    return EpsilonBound(
        epsilon=float(epsilon[0]),
        threshold=threshold,
        tpr=float(true_positives[0] / n_members),
        fpr=float(false_positives[0] / n_non_members),
        tpr_low=float(tpr_low[0]),
        fpr_high=float(fpr_high[0]),
        true_positives=int(true_positives[0]),
        false_positives=int(false_positives[0]),
        n_members=n_members,
        n_non_members=n_non_members,
        confidence=confidence,
        delta=delta,
        method=method,
    )


# ---------------------------------------------------------------------------
# one-run canary audit (Steinke, Nasr and Jagielski 2023)


@dataclasses.dataclass(frozen=True)
class OneRunAuditResult:
    """Result of a one-run canary audit.

    Attributes
    ----------
    epsilon : float
        Lower bound on epsilon, >= 0. Under (epsilon', delta)-DP with a smaller
        epsilon', a bound this high occurs with probability at most ``1 - confidence``.
    k_plus, k_minus : int
        Number of "in" guesses (highest scores) and "out" guesses (lowest scores).
    guesses : int
        ``k_plus + k_minus``; the auditor abstains on the other canaries.
    correct : int
        Number of correct guesses.
    canaries : int
        Number of canaries ``m``.
    delta, confidence : float
        The settings the bound was computed for.
    candidates : int
        Number of ``(k_plus, k_minus)`` settings tried; the failure probability
        was split among them (1 for :func:`one_run_audit`).
    """

    epsilon: float
    k_plus: int
    k_minus: int
    guesses: int
    correct: int
    canaries: int
    delta: float
    confidence: float
    candidates: int = 1


def _one_run_p_value(canaries, guesses, correct, epsilon, delta):
    # Probability of at least `correct` right guesses out of `guesses` under
    # (epsilon, delta)-DP, with m = `canaries` each included with probability 1/2
    # (Steinke, Nasr and Jagielski 2023, arXiv:2305.08846, Corollary 5.4):
    #   P[Binomial(r, q) >= v] + 2 m delta max_{1<=i<=v} P[v - i <= Binomial(r, q) < v] / i,
    # where q = e^eps / (1 + e^eps) is the accuracy of eps-DP randomized response.
    q = special.expit(epsilon)
    p_value = stats.binom.sf(correct - 1, guesses, q)
    if delta > 0 and correct > 0:
        below = stats.binom.pmf(np.arange(correct - 1, -1, -1), guesses, q)
        window = np.cumsum(below) / np.arange(1, correct + 1)
        p_value += 2 * canaries * delta * window.max()
    return float(min(p_value, 1.0))


def _one_run_epsilon(canaries, guesses, correct, delta, alpha):
    # The bound is an epsilon whose p-value is at most alpha, found where the
    # p-value crosses alpha (0 if even epsilon = 0 is not rejected). Rejecting
    # epsilon also rejects every smaller one, because (eps', delta)-DP implies
    # (eps, delta)-DP for eps' < eps.
    def excess(epsilon):
        return _one_run_p_value(canaries, guesses, correct, epsilon, delta) - alpha

    if excess(0.0) > 0:
        return 0.0
    high = 1.0
    while excess(high) <= 0:
        high *= 2.0
    epsilon = optimize.brentq(excess, 0.0, high, xtol=1e-10)
    while epsilon > 0 and excess(epsilon) > 0:
        epsilon = max(0.0, epsilon - 1e-10)
    return float(epsilon)


def _check_canaries(scores, canary_in):
    labels, values = _check_pair(canary_in, scores, true_name="canary_in", score_name="scores", both_classes=False)
    if labels.size == 0:
        raise invalid("scores", "a non-empty array", scores, "Pass one score per canary.")
    return labels, values


def _guess_order(values, seed):
    # Ascending by score, with ties broken at random so that the order of the
    # canaries in the input cannot leak into the guesses.
    tie_breaker = np.random.default_rng(seed).random(values.size)
    return np.lexsort((tie_breaker, values))


def _count_correct(labels, order, k_plus, k_minus):
    in_guesses = order[order.size - k_plus :] if k_plus else order[:0]
    out_guesses = order[:k_minus]
    return int(labels[in_guesses].sum() + (~labels[out_guesses]).sum())


def _check_guess_counts(k_plus, k_minus, canaries):
    k_plus = check_int("k_plus", k_plus, "Pass the number of highest-scoring canaries to guess as included.", minimum=0)
    k_minus = check_int("k_minus", k_minus, "Pass the number of lowest-scoring canaries to guess as excluded.", minimum=0)
    if k_plus + k_minus < 1 or k_plus + k_minus > canaries:
        raise invalid(
            "k_plus + k_minus",
            f"between 1 and the number of canaries ({canaries})",
            k_plus + k_minus,
            "Guess on fewer canaries, e.g. k_plus = k_minus = m // 10.",
        )
    return k_plus, k_minus


def one_run_audit(scores, canary_in, *, k_plus, k_minus, delta, confidence=0.95, seed=0):
    """Lower-bound epsilon from a single training run with randomly included canaries.

    The audit of Steinke, Nasr and Jagielski, "Privacy Auditing with One (1)
    Training Run" (NeurIPS 2023): each of ``m`` canaries was included in training
    independently with probability 1/2 (``canary_in``). The auditor guesses
    "included" for the ``k_plus`` highest scores and "excluded" for the ``k_minus``
    lowest, abstains on the rest, and counts the correct guesses ``v`` out of
    ``r = k_plus + k_minus``. Under epsilon-DP, ``v`` is stochastically dominated
    by ``Binomial(r, e^eps / (1 + e^eps))``; under (epsilon, delta)-DP the paper's
    Corollary 5.4 adds a term proportional to ``m * delta``. The bound is the
    largest epsilon whose p-value for ``v`` is at most ``1 - confidence``, solved
    with :func:`scipy.optimize.brentq`.

    ``k_plus`` and ``k_minus`` must be fixed before looking at the canaries'
    membership; use :func:`one_run_audit_best` to try several values.

    Parameters
    ----------
    scores : array_like of shape (m,)
        Attack scores of the canaries, higher for "included". Finite.
    canary_in : array_like of shape (m,)
        1 (True) for canaries that were included in training, 0 otherwise. The
        inclusion must have been a fair coin flip per canary.
    k_plus, k_minus : int
        Number of "included" and "excluded" guesses, >= 0, with
        ``1 <= k_plus + k_minus <= m``.
    delta : float
        The delta of the guarantee being tested, in [0, 1).
    confidence : float, default 0.95
        Probability that the bound holds, in (0, 1).
    seed : int, default 0
        Seed that breaks ties between equal scores at random.

    Returns
    -------
    OneRunAuditResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> canary_in = rng.random(1000) < 0.5
    >>> scores = rng.normal(size=1000) + 3 * canary_in
    >>> result = one_run_audit(scores, canary_in, k_plus=100, k_minus=100, delta=0.0)
    >>> result.correct, bool(result.epsilon > 2)
    (200, True)
    """
    labels, values = _check_canaries(scores, canary_in)
    k_plus, k_minus = _check_guess_counts(k_plus, k_minus, labels.size)
    delta = _check_delta(delta)
    confidence = _check_confidence(confidence)
    seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)

    order = _guess_order(values, seed)
    correct = _count_correct(labels, order, k_plus, k_minus)
    epsilon = _one_run_epsilon(labels.size, k_plus + k_minus, correct, delta, 1.0 - confidence)
    return OneRunAuditResult(
        epsilon=epsilon,
        k_plus=k_plus,
        k_minus=k_minus,
        guesses=k_plus + k_minus,
        correct=correct,
        canaries=labels.size,
        delta=delta,
        confidence=confidence,
    )


def _default_guesses(canaries):
    sizes = {max(1, int(round(share * canaries / 2))) for share in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)}
    return sorted((k, k) for k in sizes if 2 * k <= canaries) or [(1, 0)]


def _as_guess_pairs(guesses, canaries):
    if guesses is None:
        return _default_guesses(canaries)
    pairs = []
    try:
        for item in guesses:
            pairs.append((item, item) if isinstance(item, numbers.Integral) and not isinstance(item, bool) else tuple(item))
    except TypeError:
        pairs = None
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise invalid(
            "guesses",
            "None or a non-empty sequence of ints k (k_plus = k_minus = k) or (k_plus, k_minus) pairs",
            guesses,
            "Pass guesses=(10, 50, 100) or guesses=[(100, 0), (50, 50)].",
        )
    return [_check_guess_counts(k_plus, k_minus, canaries) for k_plus, k_minus in pairs]


def one_run_audit_best(scores, canary_in, *, delta, confidence=0.95, guesses=None, seed=0):
    """Run :func:`one_run_audit` for several guess counts and return the best valid bound.

    Picking the number of guesses after seeing which one gives the largest
    epsilon would be optimistic. Here each of the ``c`` candidate settings is
    audited at confidence ``1 - (1 - confidence) / c`` (a Bonferroni
    correction), so the reported maximum still holds with probability
    ``confidence``. Fewer candidates lose less to the correction.

    Parameters
    ----------
    scores : array_like of shape (m,)
        Attack scores of the canaries, higher for "included".
    canary_in : array_like of shape (m,)
        1 (True) for included canaries, 0 otherwise.
    delta : float
        The delta of the guarantee being tested, in [0, 1).
    confidence : float, default 0.95
        Probability that the reported bound holds, in (0, 1).
    guesses : sequence or None, default None
        Candidate settings: ints ``k`` (meaning ``k_plus = k_minus = k``) or
        ``(k_plus, k_minus)`` pairs. None tries ``k_plus = k_minus`` equal to
        1%, 2%, 5%, 10%, 20%, 50% and 100% of ``m / 2``.
    seed : int, default 0
        Seed that breaks ties between equal scores.

    Returns
    -------
    OneRunAuditResult
        The candidate with the largest epsilon; ``confidence`` is the overall
        confidence and ``candidates`` the number of settings tried.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> canary_in = rng.random(1000) < 0.5
    >>> scores = rng.normal(size=1000) + 3 * canary_in
    >>> best = one_run_audit_best(scores, canary_in, delta=0.0)
    >>> best.candidates, bool(best.epsilon > 2)
    (7, True)
    """
    labels, values = _check_canaries(scores, canary_in)
    delta = _check_delta(delta)
    confidence = _check_confidence(confidence)
    seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
    pairs = _as_guess_pairs(guesses, labels.size)

    alpha_each = (1.0 - confidence) / len(pairs)
    order = _guess_order(values, seed)
    best = None
    for k_plus, k_minus in pairs:
        correct = _count_correct(labels, order, k_plus, k_minus)
        epsilon = _one_run_epsilon(labels.size, k_plus + k_minus, correct, delta, alpha_each)
        if best is None or epsilon > best.epsilon:
            best = OneRunAuditResult(
                epsilon=epsilon,
                k_plus=k_plus,
                k_minus=k_minus,
                guesses=k_plus + k_minus,
                correct=correct,
                canaries=labels.size,
                delta=delta,
                confidence=confidence,
                candidates=len(pairs),
            )
    return best
