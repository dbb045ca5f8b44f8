"""Tests for dpkit.audit: fast metrics against slow loop versions, DP bounds against
closed forms and Opacus, and coverage checks of the empirical epsilon bounds."""

import doctest
import functools
import itertools
import math
import warnings

import numpy as np
import pytest
from opacus.accountants import GaussianAccountant
from opacus.accountants.analysis import gdp as opacus_gdp
from scipy import special, stats
from sklearn.metrics import roc_curve

from dpkit import audit
from dpkit._checks import DPKitWarning
from dpkit.audit import (
    advantage_bound,
    auc,
    bootstrap_ci,
    clopper_pearson,
    dp_roc_bound,
    dp_sgd_mu,
    epsilon_lower_bound,
    gdp_advantage_bound,
    gdp_epsilon,
    gdp_roc_bound,
    membership_advantage,
    one_run_audit,
    one_run_audit_best,
    roc,
    summarize,
    tpr_at_fpr,
)
from dpkit.mechanisms import laplace, randomized_response


def test_docstring_examples_run():
    result = doctest.testmod(audit)
    assert result.attempted > 20
    assert result.failed == 0


# ---------------------------------------------------------------------------
# slow, obvious versions of the ROC metrics


def slow_roc_points(y_true, y_score):
    labels = np.asarray(y_true, dtype=bool)
    scores = np.asarray(y_score, dtype=float)
    points = [(0.0, 0.0)]
    for threshold in sorted(set(scores.tolist()), reverse=True):
        predicted = scores >= threshold
        fpr = (predicted & ~labels).sum() / (~labels).sum()
        tpr = (predicted & labels).sum() / labels.sum()
        points.append((fpr, tpr))
    return points


def slow_tpr_at_fpr(y_true, y_score, fpr):
    return max(tpr for point_fpr, tpr in slow_roc_points(y_true, y_score) if point_fpr <= fpr)


def slow_advantage(y_true, y_score):
    return max(tpr - fpr for fpr, tpr in slow_roc_points(y_true, y_score))


def slow_auc(y_true, y_score):
    members = [s for s, y in zip(y_score, y_true) if y]
    non_members = [s for s, y in zip(y_score, y_true) if not y]
    wins = sum(1.0 if m > n else 0.5 if m == n else 0.0 for m in members for n in non_members)
    return wins / (len(members) * len(non_members))


HAND_CASES = {
    "ties": ([1, 0, 1, 0, 1, 0], [0.5, 0.5, 0.7, 0.2, 0.5, 0.7]),
    "constant": ([1, 0, 0, 1, 0], [3.0, 3.0, 3.0, 3.0, 3.0]),
    "perfect": ([1, 1, 0, 0, 0], [0.9, 0.8, 0.3, 0.2, 0.1]),
    "reversed": ([0, 0, 1, 1], [0.9, 0.8, 0.3, 0.2]),
    "diagonal ties": ([1, 0, 1, 0, 1, 0], [3, 3, 2, 2, 1, 1]),
    "one member": ([0, 0, 0, 1, 0], [0.1, 0.4, 0.2, 0.3, 0.0]),
}


def random_cases(count=60):
    rng = np.random.default_rng(123)
    for _ in range(count):
        n = int(rng.integers(2, 30))
        y_true = rng.integers(0, 2, n)
        y_true[:2] = [0, 1]
        # Few distinct values so that ties are common.
        y_score = rng.integers(0, 5, n) + 0.5 * y_true * rng.integers(0, 2, n)
        yield y_true, y_score


ALL_CASES = list(HAND_CASES.values()) + list(random_cases())


def test_roc_matches_slow_points():
    for y_true, y_score in ALL_CASES:
        fpr, tpr, thresholds = roc(y_true, y_score)
        np.testing.assert_allclose(np.column_stack([fpr, tpr]), slow_roc_points(y_true, y_score))
        assert thresholds[0] == np.inf


def test_auc_matches_pair_count():
    for y_true, y_score in ALL_CASES:
        assert auc(y_true, y_score) == pytest.approx(slow_auc(y_true, y_score))


def test_tpr_at_fpr_matches_slow():
    for y_true, y_score in ALL_CASES:
        for target in (0.01, 0.1, 0.25, 1 / 3, 0.5, 0.9):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DPKitWarning)
                fast = tpr_at_fpr(y_true, y_score, fpr=target)
            assert fast == pytest.approx(slow_tpr_at_fpr(y_true, y_score, target))


def test_tpr_at_fpr_on_diagonal_ties():
    # Each tie group contains one member and one non-member: the middle point
    # (FPR 1/3, TPR 1/3) is a real threshold and must not be dropped.
    y_true, y_score = HAND_CASES["diagonal ties"]
    assert tpr_at_fpr(y_true, y_score, fpr=0.4) == pytest.approx(1 / 3)


def test_tpr_at_fpr_accepts_arrays():
    y_true, y_score = HAND_CASES["ties"]
    values = tpr_at_fpr(y_true, y_score, fpr=[0.34, 0.7])
    assert values.shape == (2,)
    assert values.tolist() == pytest.approx([slow_tpr_at_fpr(y_true, y_score, 0.34), slow_tpr_at_fpr(y_true, y_score, 0.7)])


def test_advantage_matches_slow():
    for y_true, y_score in ALL_CASES:
        assert membership_advantage(y_true, y_score) == pytest.approx(slow_advantage(y_true, y_score))


def test_edge_case_values():
    assert auc(*HAND_CASES["constant"]) == 0.5
    assert membership_advantage(*HAND_CASES["constant"]) == 0.0
    assert auc(*HAND_CASES["perfect"]) == 1.0
    assert membership_advantage(*HAND_CASES["perfect"]) == 1.0
    assert tpr_at_fpr(*HAND_CASES["perfect"], fpr=0.34) == 1.0
    assert auc(*HAND_CASES["reversed"]) == 0.0


def test_random_scores_auc_near_half():
    rng = np.random.default_rng(5)
    y_true = rng.integers(0, 2, 10_000)
    y_score = rng.normal(size=10_000)
    assert abs(auc(y_true, y_score) - 0.5) < 0.02
    assert membership_advantage(y_true, y_score) < 0.05


def test_tpr_at_fpr_warns_when_fpr_too_small():
    y_true = np.repeat([1, 0], 100)
    y_score = np.arange(200.0)
    with pytest.warns(DPKitWarning, match="no false positives"):
        tpr_at_fpr(y_true, y_score, fpr=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tpr_at_fpr(y_true, y_score, fpr=0.01)


# ---------------------------------------------------------------------------
# bootstrap and summary


def _gaussian_attack(n_members, n_non_members, shift, seed):
    rng = np.random.default_rng(seed)
    y_true = np.r_[np.ones(n_members, dtype=int), np.zeros(n_non_members, dtype=int)]
    return y_true, rng.normal(size=y_true.size) + shift * y_true


def test_bootstrap_ci_contains_estimate_and_is_seeded():
    y_true, y_score = _gaussian_attack(300, 200, 1.0, seed=0)
    low, high = bootstrap_ci(y_true, y_score, auc, n_bootstrap=100, seed=3)
    assert low < auc(y_true, y_score) < high
    assert (low, high) == bootstrap_ci(y_true, y_score, auc, n_bootstrap=100, seed=3)
    assert (low, high) != bootstrap_ci(y_true, y_score, auc, n_bootstrap=100, seed=4)


def test_bootstrap_ci_is_stratified():
    # The share of members is the same in every stratified resample.
    y_true, y_score = _gaussian_attack(30, 70, 1.0, seed=0)
    low, high = bootstrap_ci(y_true, y_score, lambda y, s: float(np.mean(y)), n_bootstrap=50)
    assert low == pytest.approx(0.3)
    assert high == pytest.approx(0.3)


def test_bootstrap_ci_narrows_with_more_data():
    small = bootstrap_ci(*_gaussian_attack(100, 100, 1.0, seed=1), membership_advantage, n_bootstrap=200)
    large = bootstrap_ci(*_gaussian_attack(2000, 2000, 1.0, seed=1), membership_advantage, n_bootstrap=200)
    assert large[1] - large[0] < small[1] - small[0]


def test_bootstrap_ci_accepts_partial_tpr():
    y_true, y_score = _gaussian_attack(1000, 1000, 2.0, seed=2)
    metric = functools.partial(tpr_at_fpr, fpr=0.01)
    low, high = bootstrap_ci(y_true, y_score, metric, n_bootstrap=100)
    assert low <= metric(y_true, y_score) <= high


def test_summarize_matches_individual_metrics():
    y_true, y_score = _gaussian_attack(1500, 1000, 1.5, seed=4)
    row = summarize(y_true, y_score, n_bootstrap=200)
    assert row["n_members"] == 1500
    assert row["n_non_members"] == 1000
    assert row["auc"] == pytest.approx(auc(y_true, y_score))
    assert row["advantage"] == pytest.approx(membership_advantage(y_true, y_score))
    assert row["tpr@0.1%"] == pytest.approx(tpr_at_fpr(y_true, y_score, fpr=0.001))
    assert row["tpr@1%"] == pytest.approx(tpr_at_fpr(y_true, y_score, fpr=0.01))
    for name in ("auc", "advantage", "tpr@0.1%", "tpr@1%"):
        assert row[f"{name}_low"] <= row[name] <= row[f"{name}_high"]
    assert row["confidence"] == 0.95


def test_summarize_without_ci():
    y_true, y_score = _gaussian_attack(200, 200, 1.0, seed=4)
    row = summarize(y_true, y_score, fprs=(0.05,), ci=False)
    assert set(row) == {"n_members", "n_non_members", "auc", "tpr@5%", "advantage"}


# ---------------------------------------------------------------------------
# DP bounds


def test_dp_roc_bound_known_points():
    fpr = np.linspace(0, 1, 11)
    np.testing.assert_allclose(dp_roc_bound(fpr, epsilon=0.0), fpr)
    assert dp_roc_bound(0.1, epsilon=math.log(3)) == pytest.approx(0.3)
    assert dp_roc_bound(0.8, epsilon=math.log(3)) == pytest.approx(1 - 0.2 / 3)
    assert dp_roc_bound(0.0, epsilon=1.0, delta=0.01) == pytest.approx(0.01)
    assert dp_roc_bound(1.0, epsilon=1.0, delta=0.01) == 1.0


def test_dp_roc_bound_is_symmetric():
    # The region is symmetric: if (a, t) is on the boundary, so is (1 - t, 1 - a).
    for epsilon, delta in ((0.5, 0.0), (2.0, 1e-3), (1.0, 0.1)):
        fpr = np.linspace(0, 1, 201)
        tpr = dp_roc_bound(fpr, epsilon=epsilon, delta=delta)
        inner = tpr < 1
        np.testing.assert_allclose(dp_roc_bound(1 - tpr[inner], epsilon=epsilon, delta=delta), 1 - fpr[inner], atol=1e-12)


def test_dp_roc_bound_reached_by_randomized_response():
    # Randomized response is the worst case of pure DP: its one ROC point lies on the bound.
    for epsilon in (0.2, 1.0, 3.0):
        p = special.expit(epsilon)
        assert dp_roc_bound(1 - p, epsilon=epsilon) == pytest.approx(p)


def test_gdp_roc_bound_is_envelope_of_opacus_profile():
    # mu-GDP is (eps, delta(eps))-DP for every eps, with Opacus's delta_eps_mu as
    # delta(eps); the GDP curve is the lower envelope of those DP regions.
    mu = 1.5
    fpr = np.linspace(0.001, 0.999, 50)
    epsilons = np.linspace(0.0, 12.0, 2401)
    envelope = np.min(
        [dp_roc_bound(fpr, epsilon=e, delta=opacus_gdp.delta_eps_mu(eps=e, mu=mu)) for e in epsilons[1:]], axis=0
    )
    curve = gdp_roc_bound(fpr, mu=mu)
    assert np.all(curve <= envelope + 1e-9)
    np.testing.assert_allclose(curve, envelope, atol=2e-3)


def test_gdp_roc_bound_closed_form():
    assert gdp_roc_bound(0.5, mu=0.0) == pytest.approx(0.5)
    assert gdp_roc_bound(0.05, mu=2.0) == pytest.approx(stats.norm.cdf(stats.norm.ppf(0.05) + 2.0))
    np.testing.assert_allclose(gdp_roc_bound([0.0, 1.0], mu=3.0), [0.0, 1.0])


def test_advantage_bounds_are_curve_maxima():
    fpr = np.linspace(0, 1, 200_001)
    for epsilon, delta in ((0.0, 0.0), (0.5, 0.0), (math.log(3), 0.0), (2.0, 1e-2), (1.0, 0.2)):
        expected = np.max(dp_roc_bound(fpr, epsilon=epsilon, delta=delta) - fpr)
        assert advantage_bound(epsilon=epsilon, delta=delta) == pytest.approx(expected, abs=1e-5)
    for mu in (0.0, 0.5, 2.0):
        expected = np.max(gdp_roc_bound(fpr, mu=mu) - fpr)
        assert gdp_advantage_bound(mu) == pytest.approx(expected, abs=1e-5)
    assert advantage_bound(epsilon=800.0) == pytest.approx(1.0)


GDP_SETTINGS = [(1.0, 0.01, 1000), (0.8, 0.004, 5000), (1.5, 0.02, 300), (2.0, 0.1, 100)]


@pytest.mark.parametrize("noise_multiplier, sample_rate, steps", GDP_SETTINGS)
def test_dp_sgd_mu_matches_opacus(noise_multiplier, sample_rate, steps):
    expected = opacus_gdp.compute_mu_poisson(steps=steps, noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    assert dp_sgd_mu(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("noise_multiplier, sample_rate, steps", GDP_SETTINGS)
def test_gdp_epsilon_matches_opacus_accountant(noise_multiplier, sample_rate, steps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns that GDP accounting is experimental.
        accountant = GaussianAccountant()
    for _ in range(steps):
        accountant.step(noise_multiplier=noise_multiplier, sample_rate=sample_rate)
    expected = accountant.get_epsilon(delta=1e-5)
    mu = dp_sgd_mu(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps)
    assert gdp_epsilon(mu=mu, delta=1e-5) == pytest.approx(expected, rel=1e-8)


def test_gdp_epsilon_edges():
    assert gdp_epsilon(mu=0.0, delta=1e-5) == 0.0
    # At delta >= 2 Phi(mu / 2) - 1 no epsilon is needed.
    assert gdp_epsilon(mu=0.1, delta=0.1) == 0.0
    for mu in (0.3, 1.0, 5.0):
        epsilon = gdp_epsilon(mu=mu, delta=1e-6)
        assert opacus_gdp.delta_eps_mu(eps=epsilon, mu=mu) <= 1e-6
        assert opacus_gdp.delta_eps_mu(eps=epsilon, mu=mu) == pytest.approx(1e-6, rel=1e-6)


# ---------------------------------------------------------------------------
# Clopper-Pearson


def test_clopper_pearson_matches_scipy():
    for trials, successes, confidence in itertools.product((1, 7, 50, 1000), (0, 1, 3), (0.9, 0.99)):
        successes = min(successes, trials)
        for alternative in ("two-sided", "greater", "less"):
            expected = stats.binomtest(successes, trials, alternative=alternative).proportion_ci(
                confidence_level=confidence, method="exact"
            )
            low, high = clopper_pearson(successes, trials, confidence=confidence, alternative=alternative)
            assert low == pytest.approx(expected.low, abs=1e-12)
            assert high == pytest.approx(expected.high, abs=1e-12)
        full = stats.binomtest(trials, trials).proportion_ci(confidence_level=confidence, method="exact")
        assert clopper_pearson(trials, trials, confidence=confidence) == pytest.approx((full.low, full.high))


def test_clopper_pearson_on_arrays():
    low, high = clopper_pearson(np.array([0, 5, 10]), 10, alternative="less")
    assert low.tolist() == [0.0, 0.0, 0.0]
    assert high[2] == 1.0
    assert high[0] < high[1] < high[2]


# ---------------------------------------------------------------------------
# empirical epsilon lower bound


def _rr_trials(n, epsilon, seed):
    # One trial per example: the score is the randomized-response report of the
    # membership bit, an epsilon-DP release.
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, n)
    return y_true, randomized_response(y_true, epsilon=epsilon, rng=rng).astype(float)


@pytest.mark.parametrize("method", ["split", "bonferroni"])
def test_bound_from_rr_is_close_below_epsilon(method):
    y_true, y_score = _rr_trials(20_000, 1.0, seed=0)
    bound = epsilon_lower_bound(y_true, y_score, delta=0.0, method=method)
    assert bound.epsilon <= 1.0
    assert bound.epsilon > 0.5
    assert bound.method == method


def test_bound_from_laplace_is_below_epsilon():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 2, 20_000)
    y_score = laplace(y_true.astype(float), sensitivity=1.0, epsilon=1.0, rng=rng)
    bound = epsilon_lower_bound(y_true, y_score, delta=0.0)
    assert 0.5 < bound.epsilon <= 1.0


def test_bound_covers_true_epsilon_over_seeds():
    # At 95% confidence the bound may exceed the true epsilon in about 1 run of 20.
    exceed = {"split": 0, "bonferroni": 0}
    for seed in range(20):
        y_true, y_score = _rr_trials(2000, 1.0, seed=100 + seed)
        for method in exceed:
            if epsilon_lower_bound(y_true, y_score, delta=0.0, method=method, seed=seed).epsilon > 1.0:
                exceed[method] += 1
    assert exceed["split"] <= 3
    assert exceed["bonferroni"] <= 3


def test_perfect_separation_bound_grows_with_n():
    bounds = []
    for n in (10, 100, 1000):
        y_true = np.repeat([1, 0], n)
        y_score = np.repeat([1.0, 0.0], n)
        bound = epsilon_lower_bound(y_true, y_score, delta=0.0, threshold=0.5)
        # TPR_low = (alpha / 2)^(1 / n) and FPR_high = 1 - (alpha / 2)^(1 / n).
        root = 0.025 ** (1 / n)
        assert bound.epsilon == pytest.approx(math.log(root / (1 - root)))
        assert bound.method == "fixed"
        bounds.append(bound.epsilon)
        assert math.isfinite(epsilon_lower_bound(y_true, y_score, delta=1e-5).epsilon)
    assert bounds[0] < bounds[1] < bounds[2]


def test_random_scores_bound_near_zero():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 2, 10_000)
    y_score = rng.normal(size=10_000)
    for method in ("split", "bonferroni"):
        assert epsilon_lower_bound(y_true, y_score, delta=1e-5, method=method).epsilon < 0.15


def test_low_tail_evidence_uses_complement_test():
    # Half of the non-members score -1 and no member does. Above any threshold
    # TPR / FPR <= 2, so only TNR / FNR at threshold 0 can push the bound past log 2.
    rng = np.random.default_rng(3)
    y_true = np.repeat([1, 0], 5000)
    y_score = rng.random(10_000)
    y_score[5000:][rng.random(5000) < 0.5] = -1.0
    bound = epsilon_lower_bound(y_true, y_score, delta=0.0, method="bonferroni")
    assert bound.epsilon > 3.0
    assert bound.true_positives == 5000


def test_no_signal_rarely_gives_positive_bound():
    # Random scores come from a 0-DP mechanism, so a positive bound is a false
    # claim. Picking the best of many thresholds must not make it common.
    positive = {"split": 0, "bonferroni": 0}
    for seed in range(20):
        rng = np.random.default_rng(200 + seed)
        y_true = rng.integers(0, 2, 300)
        y_score = rng.normal(size=300)
        for method in positive:
            if epsilon_lower_bound(y_true, y_score, delta=0.0, method=method, seed=seed).epsilon > 0:
                positive[method] += 1
    assert positive["split"] <= 3
    assert positive["bonferroni"] <= 3


def test_bonferroni_levels_cover_every_threshold():
    y_true, y_score = _gaussian_attack(400, 300, 1.0, seed=6)
    bound = epsilon_lower_bound(y_true, y_score, delta=0.0, method="bonferroni", confidence=0.9)
    tpr_low, _ = clopper_pearson(bound.true_positives, 400, confidence=1 - 0.1 / (2 * 401), alternative="greater")
    _, fpr_high = clopper_pearson(bound.false_positives, 300, confidence=1 - 0.1 / (2 * 301), alternative="less")
    assert bound.tpr_low == pytest.approx(tpr_low)
    assert bound.fpr_high == pytest.approx(fpr_high)


def test_bound_assumes_higher_scores_for_members():
    y_true, y_score = _rr_trials(20_000, 1.0, seed=3)
    assert epsilon_lower_bound(y_true, -y_score, delta=0.0, method="bonferroni").epsilon == 0.0


def test_split_evaluates_held_out_half():
    y_true = np.r_[np.ones(101, dtype=int), np.zeros(60, dtype=int)]
    y_score = np.random.default_rng(0).normal(size=161) + y_true
    bound = epsilon_lower_bound(y_true, y_score, delta=0.0, calibration_fraction=0.25)
    assert bound.n_members == 101 - round(0.25 * 101)
    assert bound.n_non_members == 60 - 15
    assert bound.tpr_low <= bound.tpr
    assert bound.fpr_high >= bound.fpr


def test_bound_shrinks_with_delta_and_confidence():
    y_true, y_score = _rr_trials(5000, 2.0, seed=4)
    base = epsilon_lower_bound(y_true, y_score, delta=0.0, method="bonferroni").epsilon
    assert epsilon_lower_bound(y_true, y_score, delta=0.05, method="bonferroni").epsilon < base
    assert epsilon_lower_bound(y_true, y_score, delta=0.0, method="bonferroni", confidence=0.999).epsilon < base


# ---------------------------------------------------------------------------
# one-run audit


def slow_one_run_p_value(m, r, v, epsilon, delta):
    # Direct loop over the sum in Corollary 5.4 of Steinke, Nasr and Jagielski (2023).
    q = 1 / (1 + math.exp(-epsilon))
    p_value = sum(stats.binom.pmf(j, r, q) for j in range(v, r + 1))
    worst = 0.0
    for i in range(1, v + 1):
        window = sum(stats.binom.pmf(j, r, q) for j in range(v - i, v))
        worst = max(worst, window / i)
    return min(1.0, p_value + 2 * m * delta * worst)


def _rr_canaries(m, epsilon, seed):
    rng = np.random.default_rng(seed)
    canary_in = rng.random(m) < 0.5
    return randomized_response(canary_in, epsilon=epsilon, rng=rng).astype(float), canary_in


@pytest.mark.parametrize("delta", [0.0, 1e-4])
def test_one_run_bound_is_solution_of_p_value(delta):
    scores, canary_in = _rr_canaries(200, 3.0, seed=0)
    result = one_run_audit(scores, canary_in, k_plus=20, k_minus=20, delta=delta)
    assert result.epsilon > 0
    assert slow_one_run_p_value(200, result.guesses, result.correct, result.epsilon, delta) <= 0.05
    assert slow_one_run_p_value(200, result.guesses, result.correct, result.epsilon + 1e-3, delta) > 0.05


def test_one_run_all_correct_closed_form():
    # With delta = 0 and every guess right, the p-value is q^r.
    canary_in = np.arange(100) < 50
    scores = canary_in.astype(float)
    result = one_run_audit(scores, canary_in, k_plus=10, k_minus=10, delta=0.0)
    assert result.correct == 20
    assert result.epsilon == pytest.approx(special.logit(0.05 ** (1 / 20)), abs=1e-8)


def test_one_run_bound_below_epsilon_over_seeds():
    exceed = 0
    for seed in range(20):
        scores, canary_in = _rr_canaries(1000, 1.0, seed=seed)
        if one_run_audit(scores, canary_in, k_plus=100, k_minus=100, delta=0.0, seed=seed).epsilon > 1.0:
            exceed += 1
    assert exceed <= 3


def test_one_run_strong_signal_gives_positive_bound():
    scores, canary_in = _rr_canaries(1000, 4.0, seed=1)
    result = one_run_audit(scores, canary_in, k_plus=100, k_minus=100, delta=1e-5)
    assert 1.5 < result.epsilon <= 4.0
    assert result.guesses == 200
    assert result.canaries == 1000


def test_one_run_delta_lowers_bound():
    scores, canary_in = _rr_canaries(1000, 3.0, seed=2)
    pure = one_run_audit(scores, canary_in, k_plus=50, k_minus=50, delta=0.0).epsilon
    approximate = one_run_audit(scores, canary_in, k_plus=50, k_minus=50, delta=1e-4).epsilon
    assert approximate < pure


def test_one_run_ties_do_not_follow_input_order():
    # Constant scores carry no signal; sorted canaries must not create one.
    for canary_in in (np.arange(1000) < 500, np.arange(1000) >= 500):
        result = one_run_audit(np.zeros(1000), canary_in, k_plus=100, k_minus=100, delta=0.0)
        assert result.epsilon < 0.5


def test_one_run_best_applies_bonferroni():
    scores, canary_in = _rr_canaries(1000, 2.0, seed=3)
    guesses = [10, 50, (100, 0), (200, 200)]
    best = one_run_audit_best(scores, canary_in, delta=1e-5, guesses=guesses)
    singles = [
        one_run_audit(scores, canary_in, k_plus=k_plus, k_minus=k_minus, delta=1e-5, confidence=1 - 0.05 / 4)
        for k_plus, k_minus in [(10, 10), (50, 50), (100, 0), (200, 200)]
    ]
    assert best.epsilon == pytest.approx(max(single.epsilon for single in singles))
    assert best.candidates == 4
    assert best.confidence == 0.95
    uncorrected = max(
        one_run_audit(scores, canary_in, k_plus=k_plus, k_minus=k_minus, delta=1e-5).epsilon
        for k_plus, k_minus in [(10, 10), (50, 50), (100, 0), (200, 200)]
    )
    assert best.epsilon < uncorrected


def test_one_run_best_default_guesses():
    scores, canary_in = _rr_canaries(1000, 2.0, seed=4)
    best = one_run_audit_best(scores, canary_in, delta=0.0)
    assert best.candidates == 7
    assert 0 < best.epsilon <= 2.0


# ---------------------------------------------------------------------------
# bad input

Y = [0, 1, 0, 1]
S = [0.1, 0.9, 0.2, 0.8]

BAD_INPUTS = [
    ("roc labels not binary", lambda: roc([0, 2, 1, 1], S), "y_true"),
    ("roc labels minus one", lambda: roc([-1, 1, -1, 1], S), "y_true"),
    ("roc one class", lambda: roc([1, 1, 1, 1], S), "y_true"),
    ("roc nan score", lambda: roc(Y, [0.1, np.nan, 0.2, 0.3]), "y_score"),
    ("roc infinite score", lambda: roc(Y, [0.1, np.inf, 0.2, 0.3]), "y_score"),
    ("roc two-dimensional", lambda: roc(Y, [S]), "y_score"),
    ("roc lengths differ", lambda: roc(Y, S[:3]), "y_true and y_score"),
    ("auc one class", lambda: auc([0, 0, 0, 0], S), "y_true"),
    ("auc text scores", lambda: auc(Y, ["a", "b", "c", "d"]), "y_score"),
    ("tpr_at_fpr zero", lambda: tpr_at_fpr(Y, S, fpr=0.0), "fpr"),
    ("tpr_at_fpr above one", lambda: tpr_at_fpr(Y, S, fpr=1.5), "fpr"),
    ("tpr_at_fpr nan", lambda: tpr_at_fpr(Y, S, fpr=float("nan")), "fpr"),
    ("advantage nan", lambda: membership_advantage(Y, [np.nan] * 4), "y_score"),
    ("bootstrap metric", lambda: bootstrap_ci(Y, S, "auc"), "metric"),
    ("bootstrap resamples", lambda: bootstrap_ci(Y, S, auc, n_bootstrap=0), "n_bootstrap"),
    ("bootstrap confidence", lambda: bootstrap_ci(Y, S, auc, confidence=1.0), "confidence"),
    ("summarize fprs", lambda: summarize(Y, S, fprs=(0.01, 2.0)), "fprs"),
    ("summarize fprs none", lambda: summarize(Y, S, fprs=None), "fprs"),
    ("summarize confidence", lambda: summarize(Y, S, confidence=0.0), "confidence"),
    ("dp_roc_bound epsilon", lambda: dp_roc_bound(0.1, epsilon=-1.0), "epsilon"),
    ("dp_roc_bound epsilon nan", lambda: dp_roc_bound(0.1, epsilon=float("nan")), "epsilon"),
    ("dp_roc_bound delta", lambda: dp_roc_bound(0.1, epsilon=1.0, delta=1.0), "delta"),
    ("dp_roc_bound fpr", lambda: dp_roc_bound([0.1, 1.2], epsilon=1.0), "fpr"),
    ("gdp_roc_bound mu", lambda: gdp_roc_bound(0.1, mu=-0.5), "mu"),
    ("advantage_bound delta", lambda: advantage_bound(epsilon=1.0, delta=-0.1), "delta"),
    ("gdp_advantage_bound mu", lambda: gdp_advantage_bound(float("nan")), "mu"),
    ("dp_sgd_mu noise", lambda: dp_sgd_mu(noise_multiplier=0.0, sample_rate=0.01, steps=10), "noise_multiplier"),
    ("dp_sgd_mu sample_rate", lambda: dp_sgd_mu(noise_multiplier=1.0, sample_rate=1.5, steps=10), "sample_rate"),
    ("dp_sgd_mu steps", lambda: dp_sgd_mu(noise_multiplier=1.0, sample_rate=0.01, steps=2.5), "steps"),
    ("gdp_epsilon mu", lambda: gdp_epsilon(mu=-1.0, delta=1e-5), "mu"),
    ("gdp_epsilon delta", lambda: gdp_epsilon(mu=1.0, delta=0.0), "delta"),
    ("clopper_pearson successes", lambda: clopper_pearson(11, 10), "successes"),
    ("clopper_pearson trials", lambda: clopper_pearson(0, 0), "trials"),
    ("clopper_pearson alternative", lambda: clopper_pearson(1, 10, alternative="upper"), "alternative"),
    ("bound delta", lambda: epsilon_lower_bound(Y, S, delta=1.0), "delta"),
    ("bound confidence", lambda: epsilon_lower_bound(Y, S, delta=0.0, confidence=1.2), "confidence"),
    ("bound method", lambda: epsilon_lower_bound(Y, S, delta=0.0, method="holm"), "method"),
    ("bound threshold with split", lambda: epsilon_lower_bound(Y, S, delta=0.0, threshold=0.5, method="split"), "threshold"),
    ("bound fixed without threshold", lambda: epsilon_lower_bound(Y, S, delta=0.0, method="fixed"), "threshold"),
    ("bound threshold nan", lambda: epsilon_lower_bound(Y, S, delta=0.0, threshold=float("nan")), "threshold"),
    ("bound calibration", lambda: epsilon_lower_bound(Y, S, delta=0.0, calibration_fraction=1.0), "calibration_fraction"),
    ("bound split too small", lambda: epsilon_lower_bound([0, 1, 1], [0.1, 0.5, 0.9], delta=0.0), "y_true"),
    ("one_run k too large", lambda: one_run_audit(S, Y, k_plus=3, k_minus=3, delta=0.0), r"k_plus \+ k_minus"),
    ("one_run no guesses", lambda: one_run_audit(S, Y, k_plus=0, k_minus=0, delta=0.0), r"k_plus \+ k_minus"),
    ("one_run negative k", lambda: one_run_audit(S, Y, k_plus=-1, k_minus=2, delta=0.0), "k_plus"),
    ("one_run labels", lambda: one_run_audit(S, [0, 1, 2, 1], k_plus=1, k_minus=1, delta=0.0), "canary_in"),
    ("one_run nan score", lambda: one_run_audit([np.nan] * 4, Y, k_plus=1, k_minus=1, delta=0.0), "scores"),
    ("one_run delta", lambda: one_run_audit(S, Y, k_plus=1, k_minus=1, delta=-1e-5), "delta"),
    ("one_run confidence", lambda: one_run_audit(S, Y, k_plus=1, k_minus=1, delta=0.0, confidence=0.0), "confidence"),
    ("one_run_best guesses", lambda: one_run_audit_best(S, Y, delta=0.0, guesses=[(1, 2, 3)]), "guesses"),
    ("one_run_best empty", lambda: one_run_audit_best(S, Y, delta=0.0, guesses=[]), "guesses"),
]


@pytest.mark.parametrize("call, parameter", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_names_parameter(call, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must"):
        call()
