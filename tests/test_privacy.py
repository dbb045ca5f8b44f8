"""Tests for dpkit.privacy against Opacus's accountants and published epsilons."""

import math
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from opacus.accountants import GaussianAccountant, PRVAccountant, RDPAccountant
from opacus.accountants.analysis.rdp import compute_rdp

from dpkit._checks import DPKitWarning
from dpkit.privacy import ACCOUNTANTS, epsilon, epsilon_curve, epsilons, noise_multiplier_for

DELTA = 1e-5

# (noise_multiplier, sample_rate, steps). PRV_GRID is small because the prv
# accountant's cost grows with the steps and as the noise shrinks.
GRID = [(sigma, q, steps) for sigma in (0.8, 1.1, 2.0) for q in (0.01, 0.1) for steps in (10, 500)]
PRV_GRID = [(1.1, 0.01, 500), (2.0, 0.1, 100), (0.8, 0.01, 1000)]

# Opacus's MNIST example, examples/mnist_README.md in the Opacus repository,
# published with Opacus 0.x: (noise_multiplier, sample_rate, epochs, epsilon) at
# delta = 1e-5 with the RDP accountant.
PUBLISHED_MNIST = [(0.7, 0.004, 45, 7.10), (1.1, 0.004, 60, 3.01), (1.3, 0.004, 15, 1.19)]

# The RDP orders that Opacus 0.x searched over.
CLASSIC_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def _opacus(accountant_class, sigma, q, steps, **kwargs):
    with warnings.catch_warnings():
        # Opacus warns on every GaussianAccountant that it is experimental.
        warnings.simplefilter("ignore")
        accountant = accountant_class()
        accountant.history = [(sigma, q, steps)]
        return accountant.get_epsilon(delta=DELTA, **kwargs)


def _quiet_epsilon(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPKitWarning)
        return epsilon(**kwargs)


@pytest.mark.parametrize(("sigma", "q", "steps"), GRID)
def test_rdp_matches_opacus(sigma, q, steps):
    expected = _opacus(RDPAccountant, sigma, q, steps)

    value = epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=DELTA, accountant="rdp")

    assert value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("sigma", "q", "steps"), GRID)
def test_gdp_matches_opacus(sigma, q, steps):
    expected = _opacus(GaussianAccountant, sigma, q, steps, poisson=True)

    value = _quiet_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=DELTA, accountant="gdp")

    assert value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("sigma", "q", "steps"), PRV_GRID)
def test_prv_matches_opacus(sigma, q, steps):
    expected = _opacus(PRVAccountant, sigma, q, steps)

    value = epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=DELTA, accountant="prv")

    assert value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("sigma", "q", "epochs", "published"), PUBLISHED_MNIST)
def test_rdp_at_most_published(sigma, q, epochs, published):
    """Opacus 1.6.0's rdp accountant converts RDP to (epsilon, delta) with the
    tighter bound of Balle et al. 2020, so it gives 6.09, 2.50 and 0.92 where
    the Opacus 0.x README published 7.10, 3.01 and 1.19."""
    value = epsilon(noise_multiplier=sigma, sample_rate=q, epochs=epochs, delta=DELTA, accountant="rdp")

    assert value <= published


@pytest.mark.parametrize(("sigma", "q", "epochs", "published"), PUBLISHED_MNIST)
def test_classic_conversion_near_published(sigma, q, epochs, published):
    """The conversion of Opacus 0.x, eps = min over orders of
    rdp(order) + log(1/delta) / (order - 1) on the old order grid, computed with
    opacus.accountants.analysis.rdp.compute_rdp from Opacus 1.6.0, lands within 5%
    of the values that the Opacus 0.x README published (it gives 6.86, 2.91, 1.16)."""
    steps = round(epochs / q)
    rdp = compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=CLASSIC_ORDERS)

    classic = min(r + math.log(1 / DELTA) / (order - 1) for r, order in zip(rdp, CLASSIC_ORDERS))

    assert classic == pytest.approx(published, rel=0.05)


@pytest.mark.parametrize(("sigma", "q", "epochs", "published"), PUBLISHED_MNIST)
def test_prv_below_rdp(sigma, q, epochs, published):
    common = dict(noise_multiplier=sigma, sample_rate=q, epochs=epochs, delta=DELTA)

    assert epsilon(**common, accountant="prv") <= epsilon(**common, accountant="rdp")


# (target_epsilon, sample_rate, steps) for the rdp and gdp accountants, which are cheap.
TARGETS = [
    (target, q, steps) for target in (0.5, 2.0, 8.0) for q, steps in ((0.01, 200), (0.1, 1000), (0.004, 3750))
]


@pytest.mark.parametrize("accountant", ["rdp", "gdp"])
@pytest.mark.parametrize(("target", "q", "steps"), TARGETS)
def test_noise_for_never_overshoots(accountant, target, q, steps):
    tolerance = 0.01
    sigma = noise_multiplier_for(
        target_epsilon=target, sample_rate=q, steps=steps, delta=DELTA, accountant=accountant, tolerance=tolerance
    )

    achieved = _quiet_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=DELTA, accountant=accountant)

    assert achieved <= target
    assert achieved >= target - tolerance


@pytest.mark.parametrize(("target", "q", "steps"), [(1.0, 0.01, 200)])
def test_noise_for_prv_never_overshoots(target, q, steps):
    sigma = noise_multiplier_for(target_epsilon=target, sample_rate=q, steps=steps, delta=DELTA, accountant="prv")

    achieved = epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=DELTA, accountant="prv")

    assert achieved <= target
    assert achieved >= target - 0.01


def test_noise_for_epochs_equals_steps():
    by_epochs = noise_multiplier_for(target_epsilon=2.0, sample_rate=0.004, epochs=15, delta=DELTA)
    by_steps = noise_multiplier_for(target_epsilon=2.0, sample_rate=0.004, steps=3750, delta=DELTA)

    assert by_epochs == by_steps


def test_epsilon_epochs_equals_steps():
    by_epochs = epsilon(noise_multiplier=1.1, sample_rate=0.004, epochs=60, delta=DELTA)
    by_steps = epsilon(noise_multiplier=1.1, sample_rate=0.004, steps=15000, delta=DELTA)

    assert by_epochs == by_steps


def test_epsilon_grows_with_steps():
    common = dict(noise_multiplier=1.0, sample_rate=0.01, delta=DELTA)

    assert epsilon(**common, steps=100) < epsilon(**common, steps=1000)


def test_epsilon_falls_with_noise():
    common = dict(sample_rate=0.01, steps=1000, delta=DELTA)

    assert epsilon(noise_multiplier=2.0, **common) < epsilon(noise_multiplier=1.0, **common)


@pytest.mark.parametrize("accountant", ACCOUNTANTS)
def test_zero_noise_infinite(accountant):
    value = epsilon(noise_multiplier=0.0, sample_rate=0.01, steps=1000, delta=DELTA, accountant=accountant)

    assert value == math.inf


@pytest.mark.parametrize("accountant", ["rdp", "gdp"])
def test_curve_increasing_to_epsilon(accountant):
    common = dict(noise_multiplier=1.0, sample_rate=0.01, delta=DELTA, accountant=accountant)

    steps, values = epsilon_curve(steps=2000, points=20, **common)

    assert steps[0] == 1
    assert steps[-1] == 2000
    assert len(steps) == len(values)
    assert np.all(np.diff(steps) > 0)
    assert np.all(np.diff(values) > 0)
    assert values[-1] == pytest.approx(_quiet_epsilon(steps=2000, **common), rel=1e-12)


def test_curve_fewer_steps_than_points():
    steps, values = epsilon_curve(noise_multiplier=1.0, sample_rate=0.1, steps=5, delta=DELTA, points=50)

    assert steps.tolist() == [1, 2, 3, 4, 5]
    assert len(values) == 5


def test_epsilons_all_accountants():
    common = dict(noise_multiplier=1.1, sample_rate=0.004, epochs=60, delta=DELTA)

    values = epsilons(**common)

    assert set(values) == set(ACCOUNTANTS)
    for accountant in ACCOUNTANTS:
        assert values[accountant] == _quiet_epsilon(**common, accountant=accountant), accountant


def test_gdp_warns_few_steps():
    with pytest.warns(DPKitWarning, match="steps=50"):
        epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=50, delta=DELTA, accountant="gdp")


def test_gdp_warns_large_sample_rate():
    with pytest.warns(DPKitWarning, match="sample_rate=0.5"):
        epsilon(noise_multiplier=2.0, sample_rate=0.5, steps=1000, delta=DELTA, accountant="gdp")


def test_gdp_quiet_when_suitable():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DPKitWarning)
        value = epsilon(noise_multiplier=1.1, sample_rate=0.004, steps=15000, delta=DELTA, accountant="gdp")

    assert value > 0


def _assert_failure_message(message, accountant, inputs):
    assert f"{accountant} accountant" in message
    for text in inputs:
        assert text in message, text
    assert "Try accountant=" in message


def test_gdp_failure_message():
    with pytest.raises(ValueError) as error:
        _quiet_epsilon(noise_multiplier=0.1, sample_rate=1.0, steps=20, delta=DELTA, accountant="gdp")

    _assert_failure_message(str(error.value), "gdp", ["noise_multiplier=0.1", "sample_rate=1.0", "steps=20", "delta=1e-05"])


def test_prv_unbounded_message():
    # Opacus's prv accountant returns an infinite upper bound for these inputs.
    with pytest.raises(ValueError) as error:
        epsilon(noise_multiplier=0.08, sample_rate=1.0, steps=10, delta=DELTA, accountant="prv")

    _assert_failure_message(str(error.value), "prv", ["noise_multiplier=0.08", "sample_rate=1.0", "steps=10", "delta=1e-05"])


def test_prv_huge_domain_message():
    # Opacus 1.6.0's prv accountant sizes its discretisation grid from the noise
    # and requests about 80 PiB from numpy here, which raises MemoryError at once.
    with pytest.raises(ValueError) as error:
        epsilon(noise_multiplier=1e-6, sample_rate=0.01, steps=10, delta=DELTA, accountant="prv")

    _assert_failure_message(str(error.value), "prv", ["noise_multiplier=1e-06", "sample_rate=0.01", "steps=10"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the address-space limit is enforced on Linux")
def test_prv_small_noise_bounded_memory():
    # Opacus 1.6.0 requests a 7.25 GiB grid here. The child process runs under a
    # 3 GiB address-space limit, so that a failure cannot exhaust the test machine.
    code = textwrap.dedent(
        """
        import resource
        limit = 3 * 1024 ** 3
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from dpkit.privacy import epsilon
        try:
            epsilon(noise_multiplier=0.1, sample_rate=0.5, steps=1000, delta=1e-5, accountant="prv")
        except ValueError as error:
            print("ValueError:", error)
        """
    )
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "ValueError: the prv accountant" in finished.stdout
