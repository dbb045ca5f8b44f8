"""Privacy accounting for DP-SGD with Opacus's accountants.

The functions here are pure: they map ``(noise_multiplier, sample_rate, steps,
delta)`` to an epsilon, or a target epsilon to a noise multiplier, without
touching a model. ``noise_multiplier`` is the noise standard deviation divided by
``max_grad_norm``; ``sample_rate`` is the Poisson sampling probability of one
example per step (expected batch size over dataset size).

Accountants (all from Opacus):

- ``"rdp"``: Renyi DP of the sampled Gaussian mechanism (Mironov 2017;
  Mironov, Talwar and Zhang 2019), converted to (epsilon, delta) with the bound of
  Balle et al. 2020. An upper bound on epsilon.
- ``"prv"``: privacy random variables (Gopi, Lee and Wutschitz 2021), a numerical
  composition that is tighter than RDP; its epsilon upper bound is reported.
- ``"gdp"``: Gaussian DP with the central limit theorem approximation (Dong, Roth
  and Su 2019; Bu et al. 2020). An approximation, not a bound, that needs many
  steps and a small sample rate.
"""

import math
import warnings

import numpy as np
from opacus.accountants import create_accountant

from dpkit._checks import (
    DPKitWarning,
    check_choice,
    check_exactly_one,
    check_int,
    check_non_negative,
    check_open_unit,
    check_positive,
    check_unit_interval,
)

ACCOUNTANTS = ("rdp", "prv", "gdp")


def _check_accountant(accountant):
    return check_choice("accountant", accountant, ACCOUNTANTS, 'Use "rdp", "prv" or "gdp".')


def steps_from_epochs(*, epochs, sample_rate):
    """Number of steps in ``epochs`` passes at ``sample_rate``: ``round(epochs / sample_rate)``."""
    epochs = check_positive("epochs", epochs, "Pass a positive number of epochs.")
    sample_rate = check_unit_interval("sample_rate", sample_rate, "Use batch_size / dataset size, a number in (0, 1].")
    return max(1, int(round(epochs / sample_rate)))


def _steps(steps, epochs, sample_rate):
    check_exactly_one(steps=steps, epochs=epochs)
    if steps is not None:
        return check_int("steps", steps, "Pass the number of optimizer steps, at least 1.")
    return steps_from_epochs(epochs=epochs, sample_rate=sample_rate)


def _check_delta(delta):
    return check_open_unit("delta", delta, "Use a delta well below 1/n, e.g. 1e-5 for n up to 100,000.")


def _check_common(noise_multiplier, sample_rate, delta, accountant):
    noise_multiplier = check_non_negative(
        "noise_multiplier", noise_multiplier, "Use a noise multiplier >= 0 (0 means no noise and no privacy)."
    )
    sample_rate = check_unit_interval(
        "sample_rate", sample_rate, "Use batch_size / dataset size, a number in (0, 1]."
    )
    return noise_multiplier, sample_rate, _check_delta(delta), _check_accountant(accountant)


# The prv accountant discretises the privacy loss on a grid that grows as the noise shrinks.
# Past this many points (about 160 MB per float64 array) the request is rejected up front
# instead of exhausting memory.
PRV_MAX_GRID_POINTS = 20_000_000


def _prv_grid_points(engine, delta):
    """Grid size Opacus's prv accountant would allocate, from its own domain rule."""
    from opacus.accountants.analysis.prv import PoissonSubsampledGaussianPRV

    # NOTE: uses PRVAccountant._get_domain, a private Opacus 1.6 method; the default
    # errors below are the ones get_epsilon uses.
    prvs = [PoissonSubsampledGaussianPRV(q, sigma) for sigma, q, _ in engine.history]
    steps = [count for _, _, count in engine.history]
    domain = engine._get_domain(prvs=prvs, num_self_compositions=steps, eps_error=0.01, delta_error=delta / 1000)
    return domain.size


def _accountant_epsilon(accountant, noise_multiplier, sample_rate, steps, delta):
    """Epsilon from a fresh Opacus accountant, with failures turned into clear errors."""
    if noise_multiplier == 0:
        return math.inf
    inputs = f"noise_multiplier={noise_multiplier}, sample_rate={sample_rate}, steps={steps}, delta={delta}"
    try:
        # Opacus warns on every gdp accountant it builds; dpkit warns once, in epsilon().
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = create_accountant(accountant)
            engine.history = [(noise_multiplier, sample_rate, steps)]
            if accountant == "prv" and _prv_grid_points(engine, delta) > PRV_MAX_GRID_POINTS:
                raise ValueError(
                    f"its discretisation grid would need more than {PRV_MAX_GRID_POINTS:,} points "
                    "(the noise is too small for the number of steps)"
                )
            value = float(engine.get_epsilon(delta=delta))
    except (ValueError, RuntimeError, OverflowError, FloatingPointError, ZeroDivisionError, MemoryError) as error:
        others = ", ".join(name for name in ACCOUNTANTS if name != accountant)
        raise ValueError(
            f"the {accountant} accountant could not compute epsilon for {inputs}: {error}. "
            f"Try accountant={others.split(', ')[0]!r} (or {others.split(', ')[1]!r}), "
            "or a larger noise_multiplier."
        ) from error
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"the {accountant} accountant returned epsilon={value} for {inputs}, which is not a valid bound. "
            'Try accountant="rdp" or a larger noise_multiplier.'
        )
    return value


def epsilon(*, noise_multiplier, sample_rate, steps=None, epochs=None, delta, accountant="rdp"):
    """Compute the epsilon spent by DP-SGD.

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation over ``max_grad_norm`` (sigma), >= 0. Zero noise
        gives ``inf``.
    sample_rate : float
        Poisson sampling probability per step (q), in (0, 1].
    steps, epochs : int or float
        Exactly one: optimizer steps, or epochs (``steps = round(epochs / sample_rate)``).
    delta : float
        Target delta, in (0, 1).
    accountant : {"rdp", "prv", "gdp"}, default "rdp"

    Returns
    -------
    float
        Epsilon for the given delta under ``accountant``.

    Examples
    --------
    >>> round(epsilon(noise_multiplier=1.1, sample_rate=0.004, epochs=60, delta=1e-5), 2)
    2.5
    """
    noise_multiplier, sample_rate, delta, accountant = _check_common(noise_multiplier, sample_rate, delta, accountant)
    steps = _steps(steps, epochs, sample_rate)
    if accountant == "gdp" and (sample_rate > 0.1 or steps < 100):
        warnings.warn(
            f"the gdp accountant uses a central limit approximation that needs many steps and a small "
            f"sample rate (got steps={steps}, sample_rate={sample_rate}); its epsilon may be too low. "
            'Prefer accountant="prv" or "rdp" here.',
            DPKitWarning,
            stacklevel=2,
        )
    return _accountant_epsilon(accountant, noise_multiplier, sample_rate, steps, delta)


def epsilons(*, noise_multiplier, sample_rate, steps=None, epochs=None, delta):
    """Compute epsilon under every accountant; one that fails maps to its error message."""
    values = {}
    for accountant in ACCOUNTANTS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DPKitWarning)
                values[accountant] = epsilon(
                    noise_multiplier=noise_multiplier,
                    sample_rate=sample_rate,
                    steps=steps,
                    epochs=epochs,
                    delta=delta,
                    accountant=accountant,
                )
        except ValueError as error:
            if "could not compute" not in str(error) and "not a valid bound" not in str(error):
                raise
            values[accountant] = str(error)
    return values


def noise_multiplier_for(
    *, target_epsilon, sample_rate, steps=None, epochs=None, delta, accountant="rdp", tolerance=0.01
):
    """Find the smallest noise multiplier whose epsilon does not exceed ``target_epsilon``.

    A bisection over sigma; the result is checked so that the achieved epsilon is
    never above the target, and is within ``tolerance`` (absolute, in epsilon)
    below it.

    Examples
    --------
    >>> sigma = noise_multiplier_for(target_epsilon=1.0, sample_rate=0.01, epochs=10, delta=1e-5)
    >>> epsilon(noise_multiplier=sigma, sample_rate=0.01, epochs=10, delta=1e-5) <= 1.0
    True
    """
    target_epsilon = check_positive(
        "target_epsilon", target_epsilon, "Pass a privacy budget greater than 0, e.g. 1.0."
    )
    sample_rate = check_unit_interval(
        "sample_rate", sample_rate, "Use batch_size / dataset size, a number in (0, 1]."
    )
    delta = _check_delta(delta)
    accountant = _check_accountant(accountant)
    tolerance = check_positive("tolerance", tolerance, "Use a small positive tolerance such as 0.01.")
    steps = _steps(steps, epochs, sample_rate)

    def spent(sigma):
        # A trial sigma that the accountant cannot evaluate (too little noise for its
        # numerics) is treated as over budget: the search then moves to more noise.
        try:
            return _accountant_epsilon(accountant, sigma, sample_rate, steps, delta)
        except ValueError:
            return math.inf

    low, high = 0.0, 1.0
    while spent(high) > target_epsilon:
        low, high = high, 2 * high
        if high > 1e4:
            raise ValueError(
                f"target_epsilon={target_epsilon} cannot be reached with sample_rate={sample_rate}, "
                f"steps={steps}, delta={delta} under the {accountant} accountant even with "
                "noise_multiplier=10000. Raise target_epsilon or train for fewer steps."
            )
    # Invariant: spent(high) <= target, and low is either 0 or over the target.
    while target_epsilon - spent(high) > tolerance and high - low > 1e-6:
        middle = (low + high) / 2
        if spent(middle) > target_epsilon:
            low = middle
        else:
            high = middle
    return high


def epsilon_curve(*, noise_multiplier, sample_rate, steps, delta, accountant="rdp", points=50):
    """Compute epsilon after each of ``points`` step counts, evenly spaced up to ``steps``.

    Returns
    -------
    steps : numpy.ndarray of int, shape (points,)
    epsilons : numpy.ndarray of float, shape (points,)
    """
    noise_multiplier, sample_rate, delta, accountant = _check_common(noise_multiplier, sample_rate, delta, accountant)
    steps = check_int("steps", steps, "Pass the number of optimizer steps, at least 1.")
    points = check_int("points", points, "Pass at least 2 points.", minimum=2)
    grid = np.unique(np.linspace(1, steps, min(points, steps)).round().astype(int))
    values = np.array([_accountant_epsilon(accountant, noise_multiplier, sample_rate, int(t), delta) for t in grid])
    return grid, values
