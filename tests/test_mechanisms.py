"""Tests for dpkit.mechanisms: sampling checks, closed forms and an independent
numerical integration of the Gaussian privacy profile."""

import doctest
import math
import warnings

import numpy as np
import pytest
from opacus.accountants.analysis import gdp as opacus_gdp
from scipy import integrate, stats

from dpkit import mechanisms
from dpkit._checks import DPKitWarning
from dpkit.mechanisms import (
    gaussian,
    gaussian_delta,
    gaussian_sigma,
    laplace,
    laplace_scale,
    output_density,
    privacy_loss_ratio,
    randomized_response,
    randomized_response_estimate,
    randomized_response_probability,
)


def test_docstring_examples_run():
    result = doctest.testmod(mechanisms)
    assert result.attempted > 10
    assert result.failed == 0


# ---------------------------------------------------------------------------
# randomized response


def test_rr_probability_known_values():
    assert randomized_response_probability(0.0) == 0.5
    assert randomized_response_probability(math.log(3)) == pytest.approx(0.75)
    assert randomized_response_probability(50.0) == pytest.approx(1.0)


def test_rr_truthful_rate_matches_probability():
    truth = np.arange(100_000) % 2 == 0
    for epsilon in (0.0, 0.5, 2.0):
        reports = randomized_response(truth, epsilon=epsilon, rng=1)
        p = randomized_response_probability(epsilon)
        standard_error = math.sqrt(p * (1 - p) / truth.size)
        assert abs((reports == truth).mean() - p) < 5 * standard_error


def test_rr_keeps_shape_and_dtype():
    bools = np.array([[True, False], [False, True]])
    ints = [1, 0, 1]
    assert randomized_response(bools, epsilon=1.0, rng=0).dtype == bool
    assert randomized_response(bools, epsilon=1.0, rng=0).shape == (2, 2)
    assert randomized_response(ints, epsilon=1.0, rng=0).dtype == np.int64
    assert set(randomized_response(ints * 100, epsilon=0.1, rng=0).tolist()) == {0, 1}


def test_rr_seed_reproducible_and_input_unchanged():
    truth = np.array([True, False] * 50)
    before = truth.copy()
    first = randomized_response(truth, epsilon=0.3, rng=7)
    second = randomized_response(truth, epsilon=0.3, rng=7)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(truth, before)
    generator = np.random.default_rng(7)
    np.testing.assert_array_equal(randomized_response(truth, epsilon=0.3, rng=generator), first)


def test_rr_estimate_hand_example():
    # p = 0.75: observed 3/4 gives (0.75 - 0.25) / 0.5 = 1.
    assert randomized_response_estimate([1, 1, 0, 1], epsilon=math.log(3)) == pytest.approx(1.0)
    assert randomized_response_estimate([True, False], epsilon=math.log(3)) == pytest.approx(0.5)


def test_rr_estimate_is_unbiased():
    truth = np.arange(1000) < 300
    estimates = [randomized_response_estimate(randomized_response(truth, epsilon=0.5, rng=seed), epsilon=0.5) for seed in range(400)]
    p = randomized_response_probability(0.5)
    standard_error = math.sqrt(p * (1 - p) / truth.size) / (2 * p - 1) / math.sqrt(len(estimates))
    assert abs(np.mean(estimates) - 0.3) < 5 * standard_error


# ---------------------------------------------------------------------------
# Laplace


def test_laplace_scale_formula():
    assert laplace_scale(sensitivity=1.0, epsilon=0.5) == 2.0
    assert laplace_scale(sensitivity=3.0, epsilon=2.0) == 1.5


def test_laplace_noise_distribution():
    releases = laplace(5.0, sensitivity=2.0, epsilon=0.5, rng=0, size=200_000)
    scale = 4.0
    assert releases.shape == (200_000,)
    assert abs(np.median(releases) - 5.0) < 0.05
    assert abs(np.mean(np.abs(releases - 5.0)) - scale) < 0.05
    assert stats.kstest(releases, stats.laplace(loc=5.0, scale=scale).cdf).pvalue > 0.001


def test_laplace_shapes_and_types():
    assert isinstance(laplace(1.0, sensitivity=1.0, epsilon=1.0, rng=0), float)
    assert laplace([1.0, 2.0, 3.0], sensitivity=1.0, epsilon=1.0, rng=0).shape == (3,)
    assert laplace([1.0, 2.0], sensitivity=1.0, epsilon=1.0, rng=0, size=(5, 2)).shape == (5, 2)
    assert laplace(1.0, sensitivity=1.0, epsilon=1.0, rng=3) == laplace(1.0, sensitivity=1.0, epsilon=1.0, rng=3)


# ---------------------------------------------------------------------------
# Gaussian


def _hockey_stick_delta(sigma, sensitivity, epsilon):
    # delta(eps) = integral of max(0, p(x) - e^eps q(x)) with p = N(0, sigma^2),
    # q = N(sensitivity, sigma^2); the integrand is positive left of the crossing.
    crossing = sensitivity / 2 - epsilon * sigma**2 / sensitivity
    p = stats.norm(0.0, sigma)
    q = stats.norm(sensitivity, sigma)

    def integrand(x):
        return p.pdf(x) - math.exp(epsilon) * q.pdf(x)

    value, _ = integrate.quad(integrand, crossing - 40 * sigma, crossing, epsabs=1e-15, epsrel=1e-10, limit=200)
    return value


@pytest.mark.parametrize("sigma, sensitivity, epsilon", [(1.0, 1.0, 0.5), (2.0, 1.0, 1.0), (0.7, 1.5, 3.0), (5.0, 2.0, 0.0)])
def test_gaussian_delta_matches_integral(sigma, sensitivity, epsilon):
    expected = _hockey_stick_delta(sigma, sensitivity, epsilon)
    assert gaussian_delta(sigma=sigma, sensitivity=sensitivity, epsilon=epsilon) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mu, epsilon", [(0.5, 0.1), (1.0, 1.0), (2.0, 3.0), (4.0, 8.0)])
def test_gaussian_delta_matches_opacus_gdp_dual(mu, epsilon):
    expected = opacus_gdp.delta_eps_mu(eps=epsilon, mu=mu)
    assert gaussian_delta(sigma=1.0, sensitivity=mu, epsilon=epsilon) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_classical_sigma_formula():
    expected = 2.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert gaussian_sigma(sensitivity=2.0, epsilon=0.5, delta=1e-5) == pytest.approx(expected)


def test_classical_sigma_warns_at_large_epsilon():
    with pytest.warns(DPKitWarning, match="epsilon < 1"):
        gaussian_sigma(sensitivity=1.0, epsilon=2.0, delta=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gaussian_sigma(sensitivity=1.0, epsilon=0.99, delta=1e-5)
        gaussian_sigma(sensitivity=1.0, epsilon=5.0, delta=1e-5, analytic=True)


@pytest.mark.parametrize("epsilon, delta", [(0.1, 1e-5), (0.5, 1e-6), (1.0, 1e-5), (4.0, 1e-10), (20.0, 1e-3)])
def test_analytic_sigma_meets_delta_exactly(epsilon, delta):
    sigma = gaussian_sigma(sensitivity=1.0, epsilon=epsilon, delta=delta, analytic=True)
    achieved = gaussian_delta(sigma=sigma, sensitivity=1.0, epsilon=epsilon)
    assert achieved <= delta
    assert achieved == pytest.approx(delta, rel=1e-6)
    assert _hockey_stick_delta(sigma, 1.0, epsilon) == pytest.approx(delta, rel=1e-5)


def test_analytic_sigma_below_classical():
    for epsilon in (0.05, 0.3, 0.9):
        classical = gaussian_sigma(sensitivity=1.0, epsilon=epsilon, delta=1e-5)
        analytic = gaussian_sigma(sensitivity=1.0, epsilon=epsilon, delta=1e-5, analytic=True)
        assert analytic < classical


def test_analytic_sigma_scales_and_decreases():
    sigmas = [gaussian_sigma(sensitivity=1.0, epsilon=e, delta=1e-5, analytic=True) for e in (0.1, 0.5, 1.0, 2.0, 8.0)]
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    doubled = gaussian_sigma(sensitivity=2.0, epsilon=1.0, delta=1e-5, analytic=True)
    assert doubled == pytest.approx(2 * sigmas[2], rel=1e-9)


def test_analytic_sigma_at_zero_epsilon():
    # At epsilon = 0 the profile is 2 * Phi(mu / 2) - 1.
    sigma = gaussian_sigma(sensitivity=1.0, epsilon=0.0, delta=1e-3, analytic=True)
    assert 2 * stats.norm.cdf(0.5 / sigma) - 1 == pytest.approx(1e-3, rel=1e-6)


def test_gaussian_noise_std():
    sigma = gaussian_sigma(sensitivity=1.0, epsilon=2.0, delta=1e-5, analytic=True)
    releases = gaussian(3.0, sensitivity=1.0, epsilon=2.0, delta=1e-5, analytic=True, rng=0, size=100_000)
    assert abs(releases.mean() - 3.0) < 5 * sigma / math.sqrt(releases.size)
    assert releases.std() == pytest.approx(sigma, rel=0.01)
    assert isinstance(gaussian(3.0, sensitivity=1.0, epsilon=0.5, delta=1e-5, rng=0), float)


# ---------------------------------------------------------------------------
# densities and the privacy loss


def test_laplace_ratio_bounded_by_exp_epsilon():
    x = np.linspace(-20, 20, 2001)
    ratio = privacy_loss_ratio(x, mechanism="laplace", sensitivity=1.0, epsilon=0.7)
    assert np.all(ratio <= math.exp(0.7) * (1 + 1e-12))
    assert np.all(ratio >= math.exp(-0.7) * (1 - 1e-12))
    assert ratio[0] == pytest.approx(math.exp(0.7))
    assert ratio[-1] == pytest.approx(math.exp(-0.7))


def test_laplace_ratio_matches_pdf_ratio():
    x = np.array([-3.0, 0.2, 0.5, 2.5])
    scale = 2.0 / 0.5
    expected = stats.laplace.pdf(x, loc=1.0, scale=scale) / stats.laplace.pdf(x, loc=3.0, scale=scale)
    got = privacy_loss_ratio(x, mechanism="laplace", sensitivity=2.0, epsilon=0.5, value=1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_gaussian_log_ratio_is_linear():
    sigma = gaussian_sigma(sensitivity=1.0, epsilon=1.0, delta=1e-5, analytic=True)
    x = np.linspace(-30, 30, 13)
    got = np.log(privacy_loss_ratio(x, mechanism="gaussian", sensitivity=1.0, epsilon=1.0, delta=1e-5, analytic=True))
    np.testing.assert_allclose(got, (1.0 - 2 * x) / (2 * sigma**2), rtol=1e-9, atol=1e-12)


def test_output_density_integrates_to_one():
    x = np.linspace(-200, 200, 400_001)
    for mechanism, delta in (("laplace", None), ("gaussian", 1e-5)):
        density = output_density(x, mechanism=mechanism, value=2.0, sensitivity=1.0, epsilon=0.5, delta=delta)
        assert np.trapezoid(density, x) == pytest.approx(1.0, abs=1e-6)
        assert x[np.argmax(density)] == pytest.approx(2.0, abs=1e-3)


# ---------------------------------------------------------------------------
# bad input

BAD_INPUTS = [
    ("randomized_response_probability", lambda: randomized_response_probability(-0.1), "epsilon"),
    ("randomized_response_probability nan", lambda: randomized_response_probability(float("nan")), "epsilon"),
    ("randomized_response values", lambda: randomized_response([0, 2, 1], epsilon=1.0), "values"),
    ("randomized_response strings", lambda: randomized_response(["yes", "no"], epsilon=1.0), "values"),
    ("randomized_response rng", lambda: randomized_response([0, 1], epsilon=1.0, rng="seed"), "rng"),
    ("randomized_response epsilon", lambda: randomized_response([0, 1], epsilon=-1.0), "epsilon"),
    ("rr_estimate zero epsilon", lambda: randomized_response_estimate([0, 1], epsilon=0.0), "epsilon"),
    ("rr_estimate empty", lambda: randomized_response_estimate([], epsilon=1.0), "responses"),
    ("laplace_scale sensitivity", lambda: laplace_scale(sensitivity=0.0, epsilon=1.0), "sensitivity"),
    ("laplace_scale epsilon", lambda: laplace_scale(sensitivity=1.0, epsilon=float("nan")), "epsilon"),
    ("laplace value", lambda: laplace(float("nan"), sensitivity=1.0, epsilon=1.0), "value"),
    ("laplace size", lambda: laplace(0.0, sensitivity=1.0, epsilon=1.0, size=-3), "size"),
    ("gaussian_sigma delta zero", lambda: gaussian_sigma(sensitivity=1.0, epsilon=0.5, delta=0.0), "delta"),
    ("gaussian_sigma delta one", lambda: gaussian_sigma(sensitivity=1.0, epsilon=0.5, delta=1.0, analytic=True), "delta"),
    ("gaussian_sigma epsilon", lambda: gaussian_sigma(sensitivity=1.0, epsilon=-1.0, delta=1e-5, analytic=True), "epsilon"),
    ("gaussian_sigma classical zero", lambda: gaussian_sigma(sensitivity=1.0, epsilon=0.0, delta=1e-5), "epsilon"),
    ("gaussian epsilon", lambda: gaussian(0.0, sensitivity=1.0, epsilon=float("inf"), delta=1e-5), "epsilon"),
    ("gaussian_delta sigma", lambda: gaussian_delta(sigma=-1.0, sensitivity=1.0, epsilon=1.0), "sigma"),
    ("density mechanism", lambda: output_density(0.0, mechanism="exponential", value=0.0, sensitivity=1.0, epsilon=1.0), "mechanism"),
    ("density gaussian delta", lambda: output_density(0.0, mechanism="gaussian", value=0.0, sensitivity=1.0, epsilon=1.0), "delta"),
    ("ratio laplace delta", lambda: privacy_loss_ratio(0.0, mechanism="laplace", sensitivity=1.0, epsilon=1.0, delta=1e-5), "delta"),
    ("ratio x", lambda: privacy_loss_ratio([0.0, np.inf], mechanism="laplace", sensitivity=1.0, epsilon=1.0), "x"),
]


@pytest.mark.parametrize("call, parameter", [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_names_parameter(call, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        call()
