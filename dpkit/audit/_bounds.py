"""Upper bounds that a DP guarantee puts on every membership-inference attack."""

import math

import numpy as np
from scipy import optimize, special

from dpkit._checks import check_int, check_open_unit, check_positive, check_unit_interval
from dpkit.audit._validation import _as_output, _check_curve_fpr, _check_delta, _check_epsilon, _check_mu
from dpkit.mechanisms import _gaussian_delta


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
