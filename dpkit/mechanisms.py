"""The basic differential privacy mechanisms: randomized response, Laplace and Gaussian.

Every function here is a pure function of numpy arrays. Randomness comes from a
``numpy.random.Generator``: pass ``rng=None`` for fresh entropy, an ``int`` seed for
reproducible draws, or a ``Generator`` to share one stream across calls.

Terms used throughout:

``sensitivity``
    The L1 sensitivity (Laplace) or L2 sensitivity (Gaussian) of the query: the
    largest change of the true answer when one record is added or removed.
``epsilon``, ``delta``
    The (epsilon, delta)-DP guarantee of one release. ``epsilon`` is in nats
    (natural logarithm), so the output density changes by a factor of at most
    ``exp(epsilon)`` between neighbouring datasets.
"""

import math
import numbers
import warnings

import numpy as np
from scipy import optimize, special, stats

from dpkit._checks import (
    DPKitWarning,
    check_choice,
    check_non_negative,
    check_open_unit,
    check_positive,
    invalid,
)

__all__ = [
    "gaussian",
    "gaussian_delta",
    "gaussian_sigma",
    "laplace",
    "laplace_scale",
    "output_density",
    "privacy_loss_ratio",
    "randomized_response",
    "randomized_response_estimate",
    "randomized_response_probability",
]

MECHANISMS = ("laplace", "gaussian")


# ---------------------------------------------------------------------------
# input helpers


def _as_generator(rng):
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise invalid(
        "rng",
        "None, a non-negative int seed or a numpy.random.Generator",
        rng,
        "Pass rng=0 (or any seed) for reproducible draws, or np.random.default_rng(seed).",
    )


def _as_finite_array(name, value):
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise invalid(name, "a real number or an array of real numbers", value, "Pass numeric data.") from None
    if not np.all(np.isfinite(array)):
        raise invalid(name, "finite (no NaN or infinity)", value, "Remove or replace the non-finite entries.")
    return array


def _check_size(size):
    if size is None:
        return None
    sizes = (size,) if isinstance(size, numbers.Integral) else size
    try:
        ok = all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 0 for s in sizes)
    except TypeError:
        ok = False
    if not ok:
        raise invalid("size", "None, a non-negative int or a tuple of them", size, "Pass size=1000 for 1000 draws.")
    return tuple(int(s) for s in sizes)


def _as_binary(name, values):
    array = np.asarray(values)
    if array.dtype == bool:
        return array, True
    if array.dtype.kind not in "iuf" or not np.all(np.isin(array, (0, 1))):
        raise invalid(
            name,
            "booleans or 0/1 values",
            values,
            "Encode the answers as True/False or 1/0.",
        )
    return array.astype(bool), False


# ---------------------------------------------------------------------------
# randomized response


def randomized_response_probability(epsilon):
    """Return the probability that randomized response reports the true answer.

    Parameters
    ----------
    epsilon : float
        Privacy parameter, finite and >= 0.

    Returns
    -------
    float
        ``exp(epsilon) / (1 + exp(epsilon))``: 0.5 at ``epsilon=0`` (a fair coin) and
        close to 1 for large ``epsilon``.

    Examples
    --------
    >>> round(randomized_response_probability(math.log(3)), 3)
    0.75
    """
    epsilon = check_non_negative("epsilon", epsilon, "Use epsilon=1.0 for a typical setting.")
    return float(special.expit(epsilon))


def randomized_response(values, *, epsilon, rng=None):
    """Report each binary value truthfully with probability ``e^eps / (1 + e^eps)``, else flip it.

    Each respondent flips a biased coin independently: with probability
    ``randomized_response_probability(epsilon)`` the true answer is reported,
    otherwise the opposite. The ratio of the two report probabilities is
    ``exp(epsilon)``, so each answer is epsilon-DP.

    Parameters
    ----------
    values : array_like of bool or {0, 1}, any shape
        The true answers. Not changed in place.
    epsilon : float
        Privacy parameter, finite and >= 0. ``epsilon=0`` reports coin flips.
    rng : None, int or numpy.random.Generator, default None
        Source of randomness.

    Returns
    -------
    numpy.ndarray, same shape as ``values``
        The reported answers: bool if ``values`` was bool, otherwise int64 0/1.

    Examples
    --------
    >>> truth = np.array([True] * 700 + [False] * 300)
    >>> reports = randomized_response(truth, epsilon=1.0, rng=0)
    >>> reports.shape
    (1000,)
    >>> 0.55 < randomized_response_estimate(reports, epsilon=1.0) < 0.85
    True
    """
    truth, was_bool = _as_binary("values", values)
    p_truth = randomized_response_probability(epsilon)
    generator = _as_generator(rng)

    keep = generator.random(truth.shape) < p_truth
    reports = np.where(keep, truth, ~truth)
    return reports if was_bool else reports.astype(np.int64)


def randomized_response_estimate(responses, *, epsilon):
    """Estimate the true proportion of ``True`` answers from randomized responses.

    With ``p`` the truthful probability and ``m`` the observed proportion,
    ``E[m] = (1 - p) + (2p - 1) * pi``, so ``(m - (1 - p)) / (2p - 1)`` is an
    unbiased estimate of the true proportion ``pi``.

    Parameters
    ----------
    responses : array_like of bool or {0, 1}, non-empty
        Outputs of :func:`randomized_response`.
    epsilon : float
        The epsilon used to produce the responses; must be > 0, because at
        ``epsilon=0`` the responses carry no information.

    Returns
    -------
    float
        The unbiased estimate. It is not clipped, so it can fall slightly outside
        [0, 1] for small samples; clipping would bias it.

    Examples
    --------
    >>> randomized_response_estimate([1, 1, 0, 1], epsilon=math.log(3))
    1.0
    """
    reports, _ = _as_binary("responses", responses)
    if reports.size == 0:
        raise invalid("responses", "a non-empty array", responses, "Pass at least one response.")
    epsilon = check_positive("epsilon", epsilon, "Responses made at epsilon=0 carry no information; use epsilon > 0.")

    p_truth = randomized_response_probability(epsilon)
    observed = reports.mean()
    return float((observed - (1.0 - p_truth)) / (2.0 * p_truth - 1.0))


# ---------------------------------------------------------------------------
# noise scales


def laplace_scale(*, sensitivity, epsilon):
    """Return the Laplace scale ``b = sensitivity / epsilon`` for epsilon-DP.

    Parameters
    ----------
    sensitivity : float
        L1 sensitivity of the query, > 0.
    epsilon : float
        Privacy parameter, > 0.

    Returns
    -------
    float
        The scale ``b`` of the Laplace noise (its standard deviation is ``sqrt(2) * b``),
        in the units of the query.

    Examples
    --------
    >>> laplace_scale(sensitivity=1.0, epsilon=0.5)
    2.0
    """
    sensitivity = check_positive(
        "sensitivity", sensitivity, "Use the largest change one record can cause, e.g. 1.0 for a count."
    )
    epsilon = check_positive("epsilon", epsilon, "Use epsilon > 0; epsilon=0 would need infinite noise.")
    return sensitivity / epsilon


def _gaussian_delta(epsilon, mu):
    # Privacy profile of the Gaussian mechanism with mu = sensitivity / sigma
    # (Balle and Wang 2018). The same curve is the mu-GDP to (eps, delta)
    # conversion of Dong, Roth and Su (2022):
    #     delta = Phi(mu/2 - eps/mu) - exp(eps) * Phi(-mu/2 - eps/mu).
    # Written as Phi(a) * (1 - exp(eps + log Phi(b) - log Phi(a))) to avoid
    # overflow in exp(eps) and cancellation between the two small terms.
    if mu == 0:
        return 0.0
    if math.isinf(mu):
        return 1.0
    a = mu / 2 - epsilon / mu
    b = -mu / 2 - epsilon / mu
    log_phi_a = special.log_ndtr(a)
    if np.isneginf(log_phi_a):
        return 0.0
    log_ratio = epsilon + special.log_ndtr(b) - log_phi_a
    return float(max(0.0, -math.exp(log_phi_a) * math.expm1(min(log_ratio, 0.0))))


def gaussian_delta(*, sigma, sensitivity, epsilon):
    """Return the smallest delta for which Gaussian noise of std ``sigma`` is (epsilon, delta)-DP.

    This is the exact privacy profile of the Gaussian mechanism (Balle and Wang,
    "Improving the Gaussian Mechanism for Differential Privacy", ICML 2018), with ``mu = sensitivity / sigma``::

        delta(epsilon) = Phi(mu/2 - epsilon/mu) - exp(epsilon) * Phi(-mu/2 - epsilon/mu)

    Parameters
    ----------
    sigma : float
        Standard deviation of the noise, > 0, in the units of the query.
    sensitivity : float
        L2 sensitivity of the query, > 0.
    epsilon : float
        Privacy parameter, finite and >= 0.

    Returns
    -------
    float
        delta in [0, 1).

    Examples
    --------
    >>> round(gaussian_delta(sigma=1.0, sensitivity=1.0, epsilon=0.0), 4)
    0.3829
    """
    sigma = check_positive("sigma", sigma, "Pass the noise standard deviation, e.g. sigma=1.0.")
    sensitivity = check_positive("sensitivity", sensitivity, "Use the largest L2 change one record can cause, e.g. 1.0.")
    epsilon = check_non_negative("epsilon", epsilon, "Use epsilon=1.0 for a typical setting.")
    return _gaussian_delta(epsilon, sensitivity / sigma)


def _analytic_mu(epsilon, delta):
    # Largest mu = sensitivity / sigma with _gaussian_delta(epsilon, mu) <= delta.
    # The profile grows with mu from 0 to 1, so bracket the root on log(mu) and
    # solve it with brentq.
    def excess(log_mu):
        return _gaussian_delta(epsilon, math.exp(log_mu)) - delta

    high = 0.0
    while excess(high) < 0:
        high += 1.0
    low = high - 1.0
    while excess(low) > 0:
        low -= 1.0
    log_mu = optimize.brentq(excess, low, high, xtol=1e-13, rtol=4 * np.finfo(float).eps)

    # brentq may stop a hair above the root: step down until the guarantee holds.
    mu = math.exp(log_mu)
    while _gaussian_delta(epsilon, mu) > delta:
        mu *= 1 - 1e-12
    return mu


def gaussian_sigma(*, sensitivity, epsilon, delta, analytic=False):
    """Return the Gaussian noise standard deviation for (epsilon, delta)-DP.

    Two calibrations are available:

    * ``analytic=False`` (default): the classical bound of Dwork and Roth, "The
      Algorithmic Foundations of Differential Privacy" (2014),
      ``sigma = sensitivity * sqrt(2 * ln(1.25 / delta)) / epsilon``. It is proved
      only for ``epsilon < 1``; larger values give a :class:`DPKitWarning`.
    * ``analytic=True``: the analytic Gaussian mechanism of Balle and Wang (2018):
      the smallest sigma whose exact privacy profile (:func:`gaussian_delta`)
      stays at or below ``delta``. Valid for every epsilon >= 0 and never larger
      than the classical sigma.

    Parameters
    ----------
    sensitivity : float
        L2 sensitivity of the query, > 0.
    epsilon : float
        Privacy parameter: > 0 for the classical calibration, >= 0 for the analytic one.
    delta : float
        Privacy parameter in (0, 1).
    analytic : bool, default False
        Use the analytic calibration.

    Returns
    -------
    float
        sigma, in the units of the query.

    Examples
    --------
    >>> round(gaussian_sigma(sensitivity=1.0, epsilon=0.5, delta=1e-5), 3)
    9.69
    >>> gaussian_sigma(sensitivity=1.0, epsilon=0.5, delta=1e-5, analytic=True) < 9.69
    True
    """
    sensitivity = check_positive("sensitivity", sensitivity, "Use the largest L2 change one record can cause, e.g. 1.0.")
    delta = check_open_unit("delta", delta, "Use a small delta such as 1e-5, well below 1 / dataset size.")

    if analytic:
        epsilon = check_non_negative("epsilon", epsilon, "Use epsilon=1.0 for a typical setting.")
        return sensitivity / _analytic_mu(epsilon, delta)

    epsilon = check_positive("epsilon", epsilon, "Use epsilon > 0, or analytic=True, which also allows epsilon=0.")
    if epsilon >= 1:
        warnings.warn(
            f"The classical Gaussian calibration is proved only for epsilon < 1, got epsilon={epsilon}; "
            "the noise may be too small for the stated guarantee. Pass analytic=True for an exact calibration.",
            DPKitWarning,
            stacklevel=2,
        )
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


# ---------------------------------------------------------------------------
# additive noise mechanisms


def laplace(value, *, sensitivity, epsilon, rng=None, size=None):
    """Release ``value`` plus Laplace noise of scale ``sensitivity / epsilon`` (epsilon-DP).

    Parameters
    ----------
    value : float or array_like
        The true query answer (finite). Not changed in place.
    sensitivity : float
        L1 sensitivity of the query, > 0.
    epsilon : float
        Privacy parameter, > 0.
    rng : None, int or numpy.random.Generator, default None
        Source of randomness.
    size : None, int or tuple of int, default None
        Shape of the noise. ``None`` draws one noise value per entry of ``value``.
        Otherwise the noise of shape ``size`` is broadcast against ``value``, so
        ``size=1000`` gives 1000 releases of a scalar.

    Returns
    -------
    float or numpy.ndarray
        A float when the result is a single number, otherwise an array of the
        broadcast shape.

    Examples
    --------
    >>> releases = laplace(10.0, sensitivity=1.0, epsilon=1.0, rng=0, size=10_000)
    >>> bool(abs(releases.mean() - 10.0) < 0.1)
    True
    """
    true_value = _as_finite_array("value", value)
    scale = laplace_scale(sensitivity=sensitivity, epsilon=epsilon)
    shape = _check_size(size)
    generator = _as_generator(rng)

    noise = generator.laplace(0.0, scale, size=true_value.shape if shape is None else shape)
    released = true_value + noise
    return float(released) if released.ndim == 0 else released


def gaussian(value, *, sensitivity, epsilon, delta, analytic=False, rng=None, size=None):
    """Release ``value`` plus Gaussian noise calibrated for (epsilon, delta)-DP.

    The noise standard deviation comes from :func:`gaussian_sigma`; see there for
    the classical and the analytic calibration.

    Parameters
    ----------
    value : float or array_like
        The true query answer (finite). Not changed in place.
    sensitivity : float
        L2 sensitivity of the query, > 0.
    epsilon : float
        Privacy parameter (> 0 classical, >= 0 analytic).
    delta : float
        Privacy parameter in (0, 1).
    analytic : bool, default False
        Use the analytic calibration of Balle and Wang (2018).
    rng : None, int or numpy.random.Generator, default None
        Source of randomness.
    size : None, int or tuple of int, default None
        Shape of the noise, broadcast against ``value`` as in :func:`laplace`.

    Returns
    -------
    float or numpy.ndarray
        A float when the result is a single number, otherwise an array.

    Examples
    --------
    >>> releases = gaussian(0.0, sensitivity=1.0, epsilon=0.5, delta=1e-5, rng=0, size=10_000)
    >>> bool(9.0 < releases.std() < 10.4)
    True
    """
    true_value = _as_finite_array("value", value)
    sigma = gaussian_sigma(sensitivity=sensitivity, epsilon=epsilon, delta=delta, analytic=analytic)
    shape = _check_size(size)
    generator = _as_generator(rng)

    noise = generator.normal(0.0, sigma, size=true_value.shape if shape is None else shape)
    released = true_value + noise
    return float(released) if released.ndim == 0 else released


# ---------------------------------------------------------------------------
# densities for plots


def _noise_family(mechanism, sensitivity, epsilon, delta, analytic):
    # Returns the scipy.stats family and the noise scale, so that callers can
    # centre it on more than one true answer without recalibrating.
    mechanism = check_choice("mechanism", mechanism, MECHANISMS)
    if mechanism == "laplace":
        if delta not in (None, 0, 0.0):
            raise invalid(
                "delta",
                "None or 0 for mechanism='laplace'",
                delta,
                "The Laplace mechanism is pure epsilon-DP; drop delta or use mechanism='gaussian'.",
            )
        return stats.laplace, laplace_scale(sensitivity=sensitivity, epsilon=epsilon)
    if delta is None:
        raise invalid("delta", "a number in (0, 1) for mechanism='gaussian'", delta, "Pass delta=1e-5, for example.")
    return stats.norm, gaussian_sigma(sensitivity=sensitivity, epsilon=epsilon, delta=delta, analytic=analytic)


def output_density(x, *, mechanism, value, sensitivity, epsilon, delta=None, analytic=False):
    """Evaluate the density of a mechanism's release at ``x`` when the true answer is ``value``.

    Parameters
    ----------
    x : float or array_like
        Points at which to evaluate the density.
    mechanism : {"laplace", "gaussian"}
        The mechanism.
    value : float
        The true query answer.
    sensitivity, epsilon : float
        As for :func:`laplace` or :func:`gaussian`.
    delta : float or None, default None
        Required for ``"gaussian"``; must be None or 0 for ``"laplace"``.
    analytic : bool, default False
        Gaussian calibration, as in :func:`gaussian_sigma`.

    Returns
    -------
    numpy.ndarray, same shape as ``x``
        Density values.

    Examples
    --------
    >>> float(output_density(0.0, mechanism="laplace", value=0.0, sensitivity=1.0, epsilon=1.0))
    0.5
    """
    points = _as_finite_array("x", x)
    center = float(_as_finite_array("value", value))
    family, scale = _noise_family(mechanism, sensitivity, epsilon, delta, analytic)
    return family.pdf(points, loc=center, scale=scale)


def privacy_loss_ratio(x, *, mechanism, sensitivity, epsilon, delta=None, analytic=False, value=0.0):
    """Return the density ratio ``p(x | D) / p(x | D')`` for two neighbouring datasets.

    The true answer is ``value`` on ``D`` and ``value + sensitivity`` on ``D'``, the
    worst case allowed by the sensitivity. The logarithm of the ratio is the
    privacy loss at ``x``. For the Laplace mechanism the ratio stays within
    ``[exp(-epsilon), exp(epsilon)]`` everywhere. For the Gaussian mechanism it is
    unbounded and exceeds ``exp(epsilon)`` on a set of outputs whose probability
    is accounted for by ``delta``.

    Parameters
    ----------
    x : float or array_like
        Released values at which to evaluate the ratio.
    mechanism : {"laplace", "gaussian"}
        The mechanism.
    sensitivity, epsilon : float
        As for :func:`laplace` or :func:`gaussian`.
    delta : float or None, default None
        Required for ``"gaussian"``; must be None or 0 for ``"laplace"``.
    analytic : bool, default False
        Gaussian calibration, as in :func:`gaussian_sigma`.
    value : float, default 0.0
        True answer on ``D``.

    Returns
    -------
    numpy.ndarray, same shape as ``x``
        The ratio, computed as ``exp(logpdf_D - logpdf_D')`` so that it stays
        finite in the tails.

    Examples
    --------
    >>> ratio = privacy_loss_ratio([-5.0, 5.0], mechanism="laplace", sensitivity=1.0, epsilon=1.0)
    >>> np.round(np.log(ratio), 6).tolist()
    [1.0, -1.0]
    """
    points = _as_finite_array("x", x)
    center = float(_as_finite_array("value", value))
    family, scale = _noise_family(mechanism, sensitivity, epsilon, delta, analytic)
    log_on_d = family.logpdf(points, loc=center, scale=scale)
    log_on_neighbour = family.logpdf(points, loc=center + sensitivity, scale=scale)
    return np.exp(log_on_d - log_on_neighbour)
