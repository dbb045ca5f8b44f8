"""The one-run canary audit of Steinke, Nasr and Jagielski (2023)."""

import dataclasses
import numbers

import numpy as np
from scipy import optimize, special, stats

from dpkit._checks import check_int, invalid
from dpkit.audit._validation import _check_confidence, _check_delta, _check_pair


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
