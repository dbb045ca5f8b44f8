"""Empirical lower bounds on epsilon from the results of a threshold attack."""

import dataclasses
import math
import numbers

import numpy as np
from scipy import stats

from dpkit._checks import check_choice, check_int, check_open_unit, invalid
from dpkit.audit._validation import _as_output, _check_confidence, _check_delta, _check_pair


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
