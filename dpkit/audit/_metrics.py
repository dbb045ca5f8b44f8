"""ROC metrics of a membership-inference attack, with bootstrap confidence intervals."""

import math
import numbers
import warnings

import numpy as np
from scipy import stats
from sklearn import metrics as sk_metrics

from dpkit._checks import DPKitWarning, check_int, invalid
from dpkit.audit._validation import _as_output, _check_confidence, _check_fpr, _check_pair


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
