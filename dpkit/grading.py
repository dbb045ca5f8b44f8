"""Checks for the notebook exercises, with a hint for each typical mistake.

Each ``check_...`` function calls a learner's function on fixed inputs with fixed
seeds, so a check gives the same verdict every time it runs. A wrong answer raises
:class:`CheckFailed`, which derives from ``AssertionError`` so that nbgrader and
pytest count it as a failed test. Its message says what was observed and gives a
hint for the mistake it matches. A function that still raises
``NotImplementedError`` (the stub in the student copies) gets a "not implemented
yet" message. A correct answer displays a one-line success message in the
notebook (or logs it outside IPython) and returns ``None``.

The exercises are:

=====================================  ======================================  ========
check                                  function the learner writes             notebook
=====================================  ======================================  ========
:func:`check_count_above`              ``count_above(values, threshold)``      00
:func:`check_laplace_mechanism`        ``laplace_mechanism(...)``              01
:func:`check_loss_attack`              ``loss_scores(logits, labels)``         02
:func:`check_clip_and_noise`           ``clip_and_noise(...)``                 03
:func:`check_noise_multiplier_choice`  ``choose_noise_multiplier(...)``        04
:func:`check_smallest_epsilon`         ``smallest_epsilon(table, target)``     05
:func:`check_tpr_at_fpr`               ``tpr_at_fpr(scores, is_member, fpr)``  06
:func:`check_privacy_line`             ``privacy_line(result)``                07
=====================================  ======================================  ========
"""

import logging
import math
import numbers
import re
import warnings

import numpy as np
import torch
from scipy import stats
from torch.nn import functional

from dpkit import audit, privacy
from dpkit._checks import DPKitWarning, invalid

logger = logging.getLogger(__name__)

__all__ = [
    "CheckFailed",
    "check_clip_and_noise",
    "check_count_above",
    "check_laplace_mechanism",
    "check_loss_attack",
    "check_noise_multiplier_choice",
    "check_privacy_line",
    "check_smallest_epsilon",
    "check_tpr_at_fpr",
]


class CheckFailed(AssertionError):
    """An exercise answer is wrong; the message states what was observed and hints at the fix."""


class _Success:
    """A success message that notebooks render as a green line and plain text as itself."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text

    def _repr_html_(self):
        return f'<div style="color: #1a7f37; font-weight: bold">&#10004; {self.text}</div>'


def _passed(text):
    # The package never prints: in IPython the message is displayed as a cell output,
    # elsewhere it goes to the log.
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(_Success(text))
    else:
        logger.info(text)


def _check_callable(name, function, check_name):
    if not callable(function):
        raise invalid(
            name,
            "a function",
            function,
            f"Pass the function itself, without calling it: {check_name}({name}).",
        )


def _call(function, name, *args, **kwargs):
    """Call the learner's function; turn the stub's NotImplementedError and crashes into hints."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell "
            "with your code, run that cell, then run this check again."
        ) from None
    except CheckFailed:
        raise
    except Exception as error:
        shown = ", ".join([*(_short(a) for a in args), *(f"{k}={_short(v)}" for k, v in kwargs.items())])
        raise CheckFailed(
            f"{name}({shown}) raised {type(error).__name__}: {error}. "
            "The traceback above shows the line of your function that failed."
        ) from error


def _short(value):
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return f"<{type(value).__name__} of shape {tuple(value.shape)}>"
    if isinstance(value, (np.random.Generator, torch.Generator)):
        return f"<{type(value).__name__}>"
    return repr(value)


def _as_real(name, value):
    """Convert one returned number to a float, or fail with a hint."""
    if value is None:
        raise CheckFailed(f"{name} returned None. Hint: end the function with a `return` statement.")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise CheckFailed(f"{name} returned {_short(value)}, but one number was expected.")
    return float(value)


def _mean_abs_over_std(noise):
    # Shape statistic of centred noise, E|X| / std(X): 0.707 for Laplace, 0.798 for a
    # Gaussian and 0.866 for a uniform distribution, whatever the scale.
    return float(np.mean(np.abs(noise)) / np.std(noise))


def _shape_name(ratio):
    if ratio < 0.75:
        return "laplace"
    if ratio < 0.835:
        return "gaussian"
    return "uniform"


# ---------------------------------------------------------------------------
# 00: a warm-up count query


def check_count_above(count_above):
    """Check ``count_above(values, threshold)``: how many values are strictly above ``threshold``.

    Parameters
    ----------
    count_above : callable
        The learner's function. It receives a list of numbers and a threshold and
        must return an ``int``.

    Raises
    ------
    CheckFailed
        With a hint for ``>=`` in place of ``>``, a fraction in place of a count,
        and a list in place of a number.
    """
    _check_callable("count_above", count_above, "check_count_above")
    ages = [34, 61, 47, 60, 72, 58, 60, 81, 19, 66]
    cases = [(ages, 60, 4), (ages, 18, 10), (ages, 90, 0), ([], 50, 0)]
    for values, threshold, expected in cases:
        answer = _call(count_above, "count_above", list(values), threshold)
        if isinstance(answer, (list, tuple, np.ndarray)):
            raise CheckFailed(
                f"count_above({values}, {threshold}) returned a {type(answer).__name__}, not a number. "
                "Hint: return how many values pass, for example with len(...) or sum(...)."
            )
        number = _as_real("count_above", answer)
        if values and math.isclose(number, expected / len(values)) and expected not in (0, len(values)):
            raise CheckFailed(
                f"count_above({values}, {threshold}) returned {answer}, the fraction of values above the "
                f"threshold. Hint: return the count ({expected}), not the fraction."
            )
        at_or_above = sum(value >= threshold for value in values)
        if number == at_or_above and at_or_above != expected:
            raise CheckFailed(
                f"count_above({values}, {threshold}) returned {answer}, which counts values equal to the "
                f"threshold too. Hint: use > instead of >= ('above' is strict; the answer is {expected})."
            )
        if number != expected:
            raise CheckFailed(f"count_above({values}, {threshold}) returned {answer}, expected {expected}.")
    _passed("count_above is correct.")


# ---------------------------------------------------------------------------
# 01: the Laplace mechanism


# (true value, sensitivity, epsilon) of the two settings the check samples. Their scales,
# 4 and 0.25, tell apart every wrong formula in _LAPLACE_MISTAKES.
_LAPLACE_SETTINGS = ((100.0, 2.0, 0.5), (-3.0, 1.0, 4.0))
_LAPLACE_DRAWS = 20_000

_LAPLACE_MISTAKES = (
    (
        lambda s, e: s * e,
        "the scale looks like sensitivity * epsilon. Hint: more privacy (smaller epsilon) needs more "
        "noise, so the scale is sensitivity / epsilon.",
    ),
    (
        lambda s, e: e / s,
        "the scale looks like epsilon / sensitivity, upside down. Hint: the scale is sensitivity / epsilon.",
    ),
    (
        lambda s, e: 1 / e,
        "the scale looks like 1 / epsilon: the sensitivity is missing. Hint: the scale is "
        "sensitivity / epsilon, so a query that one record can change by 2 needs twice the noise.",
    ),
    (
        lambda s, e: s,
        "the scale looks like the sensitivity alone: epsilon is missing. Hint: the scale is "
        "sensitivity / epsilon.",
    ),
    (
        lambda s, e: s / e / math.sqrt(2),
        "the scale is sensitivity / epsilon divided by sqrt(2). Hint: rng.laplace(0.0, b) takes the "
        "scale b itself, not the standard deviation (which is sqrt(2) * b).",
    ),
)


def _laplace_noise(laplace_mechanism, true_value, sensitivity, epsilon, seed):
    rng = np.random.default_rng(seed)
    releases = np.empty(_LAPLACE_DRAWS)
    for i in range(_LAPLACE_DRAWS):
        answer = _call(
            laplace_mechanism, "laplace_mechanism", true_value, sensitivity=sensitivity, epsilon=epsilon, rng=rng
        )
        releases[i] = _as_real("laplace_mechanism", answer)
    return releases - true_value


def check_laplace_mechanism(laplace_mechanism):
    """Check ``laplace_mechanism(true_value, *, sensitivity, epsilon, rng)``.

    The function must return ``true_value`` plus one draw of Laplace noise with
    mean 0 and scale ``sensitivity / epsilon``, taken from the
    ``numpy.random.Generator`` passed as ``rng``. The check draws 20,000 releases
    in each of two settings and compares the noise's centre, shape and scale.

    Raises
    ------
    CheckFailed
        With a hint for: no noise, noise not drawn from ``rng``, noise that is the
        same on every call, noise not centred on 0, Gaussian or uniform noise, and a
        scale of ``sensitivity * epsilon``, ``epsilon / sensitivity``,
        ``1 / epsilon``, ``sensitivity``, or the standard deviation in place of the scale.
    """
    _check_callable("laplace_mechanism", laplace_mechanism, "check_laplace_mechanism")

    first = _as_real(
        "laplace_mechanism",
        _call(laplace_mechanism, "laplace_mechanism", 10.0, sensitivity=1.0, epsilon=1.0, rng=np.random.default_rng(7)),
    )
    again = _as_real(
        "laplace_mechanism",
        _call(laplace_mechanism, "laplace_mechanism", 10.0, sensitivity=1.0, epsilon=1.0, rng=np.random.default_rng(7)),
    )
    if first != again:
        raise CheckFailed(
            f"two calls with generators of the same seed returned {first} and {again}. Hint: draw the noise "
            "from the rng argument (rng.laplace(...)), not from np.random or a generator of your own, so "
            "that results can be reproduced."
        )

    for index, (true_value, sensitivity, epsilon) in enumerate(_LAPLACE_SETTINGS):
        noise = _laplace_noise(laplace_mechanism, true_value, sensitivity, epsilon, seed=index)
        setting = f"true_value={true_value}, sensitivity={sensitivity}, epsilon={epsilon}"
        if np.all(noise == 0):
            raise CheckFailed(
                f"with {setting} every release equals the true value: no noise was added. Hint: return "
                "true_value + rng.laplace(0.0, scale)."
            )
        if np.ptp(noise) < 1e-12:
            raise CheckFailed(
                f"with {setting} every release is {true_value + noise[0]}: the noise is the same on every "
                "call. Hint: draw fresh noise from the rng argument on each call."
            )
        spread = np.std(noise)
        if abs(np.mean(noise)) > 6 * spread / math.sqrt(len(noise)) + 1e-9:
            raise CheckFailed(
                f"with {setting} the releases average {true_value + np.mean(noise):.3f}, not the true value: "
                "the noise is not centred on 0. Hint: Laplace noise has mean 0, rng.laplace(0.0, scale); "
                "rng.exponential and rng.random only give positive numbers."
            )
        shape = _shape_name(_mean_abs_over_std(noise))
        if shape == "gaussian":
            raise CheckFailed(
                f"with {setting} the noise has the shape of a Gaussian, not a Laplace distribution. Hint: "
                "the Laplace mechanism needs Laplace noise: rng.laplace(0.0, scale), not rng.normal."
            )
        if shape == "uniform":
            raise CheckFailed(
                f"with {setting} the noise is spread evenly over an interval, like rng.uniform. Hint: use "
                "rng.laplace(0.0, scale)."
            )

    scales = [
        float(np.mean(np.abs(_laplace_noise(laplace_mechanism, t, s, e, seed=i))))
        for i, (t, s, e) in enumerate(_LAPLACE_SETTINGS)
    ]

    def matches(formula):
        return all(
            abs(scale / formula(s, e) - 1) < 0.05 for scale, (_, s, e) in zip(scales, _LAPLACE_SETTINGS)
        )

    if not matches(lambda s, e: s / e):
        for formula, hint in _LAPLACE_MISTAKES:
            if matches(formula):
                raise CheckFailed(f"The noise has the Laplace shape, but {hint}")
        observed = ", ".join(
            f"{scale:.3g} (expected {s / e:g}) for sensitivity={s}, epsilon={e}"
            for scale, (_, s, e) in zip(scales, _LAPLACE_SETTINGS)
        )
        raise CheckFailed(
            f"The noise has the Laplace shape, but its scale is {observed}. Hint: the scale is "
            "sensitivity / epsilon."
        )
    _passed("laplace_mechanism is correct: Laplace noise, centred, with scale sensitivity / epsilon.")


# ---------------------------------------------------------------------------
# 02: the loss-threshold attack


def _attack_inputs():
    generator = torch.Generator().manual_seed(0)
    logits = 3.0 * torch.randn(300, 10, generator=generator)
    labels = torch.randint(0, 10, (300,), generator=generator)
    # Make about half of the predictions correct, as on a trained model.
    boost = torch.rand(300, generator=generator) < 0.5
    logits[boost, labels[boost]] += 6.0
    return logits, labels


def _as_scores(name, answer, n):
    if answer is None:
        raise CheckFailed(f"{name} returned None. Hint: end the function with a `return` statement.")
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().cpu().numpy()
    try:
        scores = np.asarray(answer, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} returned {_short(answer)}, but an array of scores was expected.") from None
    if scores.shape != (n,):
        extra = (
            " Hint: F.cross_entropy averages over the batch unless you pass reduction='none'."
            if scores.size == 1
            else ""
        )
        raise CheckFailed(
            f"{name} returned an array of shape {scores.shape}, but one score per example, shape ({n},), "
            f"was expected.{extra}"
        )
    if not np.all(np.isfinite(scores)):
        raise CheckFailed(
            f"{name} returned {int(np.sum(~np.isfinite(scores)))} scores that are NaN or infinite. Hint: "
            "log(softmax(...)) underflows for confident predictions; F.cross_entropy and "
            "F.log_softmax compute the same values stably."
        )
    return scores


def _same_ranking(a, b):
    """True when ``a`` and ``b`` order the examples the same way (a monotone transform)."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.ptp(a) == np.ptp(b)
    return stats.spearmanr(a, b).statistic > 0.9999


def check_loss_attack(loss_scores):
    """Check ``loss_scores(logits, labels)``: one membership score per example.

    The score must be higher for examples that look like members, that is, minus
    the per-example cross-entropy loss, or anything that ranks the examples the
    same way (the probability of the true class does too). The check feeds fixed
    logits of shape ``(300, 10)`` and labels of shape ``(300,)``.

    Raises
    ------
    CheckFailed
        With a hint for: one number for the whole batch, the sign flipped (higher
        loss scored as member), accuracy (0/1 correctness) in place of the loss,
        the raw logit of the true class, a score that ignores the label, NaN
        scores, and logits changed in place.
    """
    _check_callable("loss_scores", loss_scores, "check_loss_attack")
    logits, labels = _attack_inputs()
    logits_before, labels_before = logits.clone(), labels.clone()
    answer = _call(loss_scores, "loss_scores", logits, labels)
    if not (torch.equal(logits, logits_before) and torch.equal(labels, labels_before)):
        raise CheckFailed(
            "loss_scores changed its inputs in place. Hint: use operations that return new tensors "
            "(x * 2, not x.mul_(2))."
        )
    scores = _as_scores("loss_scores", answer, len(labels))

    loss = functional.cross_entropy(logits.double(), labels, reduction="none").numpy()
    correct = (logits.argmax(dim=1) == labels).numpy().astype(float)
    true_logit = logits.gather(1, labels[:, None]).squeeze(1).double().numpy()
    top_probability = torch.softmax(logits.double(), dim=1).max(dim=1).values.numpy()

    if _same_ranking(scores, -loss):
        _passed("loss_scores is correct: a lower loss gives a higher membership score.")
        return
    if _same_ranking(scores, loss):
        raise CheckFailed(
            "loss_scores gives the highest scores to the examples with the highest loss, so the attack "
            "calls the worst-fitted examples members. Hint: a model fits its training members better, "
            "so members have a lower loss; return minus the loss."
        )
    if len(np.unique(scores)) <= 2 and (_same_ranking(scores, correct) or _same_ranking(scores, -correct)):
        raise CheckFailed(
            "loss_scores returns only two values, whether each prediction is correct: that is accuracy, "
            "not loss. Hint: the loss also measures how confident the model is, which separates members "
            "from non-members among the many examples that are classified correctly. Use "
            "F.cross_entropy(logits, labels, reduction='none')."
        )
    if _same_ranking(scores, true_logit) or _same_ranking(scores, -true_logit):
        raise CheckFailed(
            "loss_scores ranks examples by the raw logit of the true class. Hint: logits are not "
            "normalised across classes; the loss subtracts the log-sum-exp of all logits "
            "(F.cross_entropy does that)."
        )
    if _same_ranking(scores, top_probability) or _same_ranking(scores, -top_probability):
        raise CheckFailed(
            "loss_scores ranks examples by the model's top probability, whatever the label. Hint: the "
            "loss uses the probability of the true class, logits[i, labels[i]] after log_softmax."
        )
    raise CheckFailed(
        "loss_scores does not rank the examples by their loss. Hint: compute "
        "F.cross_entropy(logits, labels, reduction='none') and return minus it."
    )


# ---------------------------------------------------------------------------
# 03: clipping and noise in DP-SGD


# Per-example gradient norms of the check's batch: some below max_grad_norm, some above.
_GRADIENT_NORMS = (0.1, 0.3, 0.45, 0.6, 1.0, 2.0, 5.0, 0.2)
_CLIP_NORM = 0.5
_CLIP_NOISE = 1.3
_GRADIENT_SIZE = 4000


def _gradient_batch():
    generator = torch.Generator().manual_seed(3)
    directions = torch.randn(len(_GRADIENT_NORMS), _GRADIENT_SIZE, generator=generator)
    # A shared component makes the summed gradient differ from the sum of clipped ones.
    directions += 0.5 * torch.randn(1, _GRADIENT_SIZE, generator=generator)
    directions /= directions.norm(dim=1, keepdim=True)
    # One large coordinate in the largest gradient, so that clamping coordinates changes it.
    directions[6, 0] = 2.0
    directions /= directions.norm(dim=1, keepdim=True)
    return directions * torch.tensor(_GRADIENT_NORMS)[:, None]


def _clip_rows(grads, max_grad_norm):
    norms = grads.norm(dim=1, keepdim=True)
    return grads * torch.clamp(max_grad_norm / norms, max=1.0)


def _as_gradient(answer, size, batch_size):
    if answer is None:
        raise CheckFailed("clip_and_noise returned None. Hint: end the function with a `return` statement.")
    try:
        gradient = torch.as_tensor(answer).detach().double()
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed(f"clip_and_noise returned {_short(answer)}, but a tensor was expected.") from None
    if tuple(gradient.shape) == (batch_size, size):
        raise CheckFailed(
            f"clip_and_noise returned one row per example, shape {tuple(gradient.shape)}. Hint: after "
            "clipping, sum the rows, add the noise once, and divide by the batch size to get one "
            f"gradient of shape ({size},)."
        )
    if tuple(gradient.shape) != (size,):
        raise CheckFailed(
            f"clip_and_noise returned shape {tuple(gradient.shape)}, but one averaged gradient of shape "
            f"({size},) was expected."
        )
    return gradient


def _clipping_mistakes(grads, max_grad_norm):
    batch_size = len(grads)
    clipped = _clip_rows(grads, max_grad_norm)
    norms = grads.norm(dim=1, keepdim=True)
    return (
        (
            clipped.sum(dim=0),
            "the result is the sum of the clipped gradients. Hint: divide the sum (noise included) by "
            "the batch size.",
        ),
        (
            clipped.sum(dim=0) / batch_size**2,
            "the result is divided by the batch size twice. Hint: divide once, after adding the noise "
            "to the sum.",
        ),
        (
            _clip_rows(grads.sum(dim=0, keepdim=True), max_grad_norm)[0] / batch_size,
            "the summed gradient was clipped, not each example's gradient. Hint: DP-SGD bounds what one "
            "example can change, so clip each row to norm max_grad_norm before summing.",
        ),
        (
            _clip_rows(grads.mean(dim=0, keepdim=True), max_grad_norm)[0],
            "the averaged gradient was clipped, not each example's gradient. Hint: clip each row to "
            "norm max_grad_norm before summing.",
        ),
        (
            (grads * (max_grad_norm / norms)).mean(dim=0),
            "every gradient was scaled to norm max_grad_norm exactly, small ones included. Hint: the "
            "clip factor is min(1, max_grad_norm / norm), so gradients already inside the ball keep "
            "their length.",
        ),
        (
            grads.clamp(-max_grad_norm, max_grad_norm).mean(dim=0),
            "each coordinate was clamped to [-max_grad_norm, max_grad_norm]. Hint: DP-SGD clips the L2 "
            "norm of each example's whole gradient vector, grads.norm(dim=1).",
        ),
        (
            grads.mean(dim=0),
            "the result is the plain average of the gradients: nothing was clipped. Hint: scale each "
            "row by min(1, max_grad_norm / norm) first.",
        ),
        (
            (grads * torch.clamp(max_grad_norm / grads.norm(dim=0, keepdim=True), max=1.0)).mean(dim=0),
            "the norms were taken over the batch (dim=0), not over each example's gradient. Hint: use "
            "grads.norm(dim=1) for one norm per example.",
        ),
    )


def _noise_mistakes(noise_multiplier, max_grad_norm, batch_size):
    return (
        (
            noise_multiplier / batch_size,
            "the noise standard deviation is missing the factor max_grad_norm. Hint: the noise added "
            "to the sum has standard deviation noise_multiplier * max_grad_norm.",
        ),
        (
            noise_multiplier * max_grad_norm,
            "the noise was not divided by the batch size. Hint: add the noise to the sum of clipped "
            "gradients, then divide everything by the batch size.",
        ),
        (
            noise_multiplier * max_grad_norm / math.sqrt(batch_size),
            "each example got its own noise. Hint: DP-SGD adds one noise vector to the sum of the "
            "clipped gradients, not one per example.",
        ),
        (
            noise_multiplier,
            "the noise standard deviation is noise_multiplier itself, neither multiplied by "
            "max_grad_norm nor divided by the batch size.",
        ),
    )


def check_clip_and_noise(clip_and_noise):
    """Check ``clip_and_noise(per_sample_grads, *, max_grad_norm, noise_multiplier, generator)``.

    ``per_sample_grads`` is a float tensor of shape ``(batch_size, num_params)``,
    one flattened gradient per example. The function must clip each row to L2
    norm at most ``max_grad_norm``, sum the rows, add Gaussian noise of standard
    deviation ``noise_multiplier * max_grad_norm`` drawn with the
    ``torch.Generator`` ``generator``, and divide by the batch size::

        (sum_i g_i * min(1, C / ||g_i||) + N(0, (sigma * C)^2 I)) / batch_size

    This is the update that Opacus's ``DPOptimizer`` computes (for a batch of
    ``expected_batch_size`` examples).

    Raises
    ------
    CheckFailed
        With a hint for: per-example rows returned, the input changed in place,
        the summed or averaged gradient clipped in place of each example's, a clip
        factor without ``min(1, ...)``, coordinates clamped, no clipping, norms over
        the wrong dimension, a missing or doubled division by the batch size, no
        noise, noise not drawn from ``generator``, noise without the factor
        ``max_grad_norm`` or not divided by the batch size, noise per example, and
        non-Gaussian noise.
    """
    _check_callable("clip_and_noise", clip_and_noise, "check_clip_and_noise")
    grads = _gradient_batch()
    batch_size, size = grads.shape
    expected = _clip_rows(grads.double(), _CLIP_NORM).sum(dim=0) / batch_size

    # Without noise the answer is deterministic, so the clipping can be checked exactly.
    given = grads.clone()
    answer = _call(
        clip_and_noise,
        "clip_and_noise",
        given,
        max_grad_norm=_CLIP_NORM,
        noise_multiplier=0.0,
        generator=torch.Generator().manual_seed(0),
    )
    if not torch.equal(given, grads):
        raise CheckFailed(
            "clip_and_noise changed per_sample_grads in place. Hint: the caller may still need the raw "
            "gradients; use operations that return new tensors (g * factor, not g.mul_(factor))."
        )
    gradient = _as_gradient(answer, size, batch_size)
    # Opacus adds 1e-6 to each norm before dividing, so allow a relative error of that order.
    if not torch.allclose(gradient, expected, rtol=1e-4, atol=1e-7):
        for candidate, hint in _clipping_mistakes(grads.double(), _CLIP_NORM):
            if torch.allclose(gradient, candidate, rtol=1e-4, atol=1e-7):
                raise CheckFailed(f"With noise_multiplier=0, {hint}")
        error = (gradient - expected).norm().item()
        raise CheckFailed(
            f"With noise_multiplier=0 the result differs from the average of the clipped gradients by "
            f"{error:.3g} in L2 norm. Hint: scale each row by min(1, max_grad_norm / norm), sum the rows "
            "and divide by the batch size."
        )

    def noisy(seed):
        answer = _call(
            clip_and_noise,
            "clip_and_noise",
            grads.clone(),
            max_grad_norm=_CLIP_NORM,
            noise_multiplier=_CLIP_NOISE,
            generator=torch.Generator().manual_seed(seed),
        )
        return _as_gradient(answer, size, batch_size)

    first, again = noisy(11), noisy(11)
    if not torch.equal(first, again):
        raise CheckFailed(
            "two calls with generators of the same seed gave different results. Hint: pass the generator "
            "to the noise, e.g. torch.normal(0.0, std, size=..., generator=generator), so that a run "
            "can be reproduced (and compared with Opacus)."
        )
    noise = (first - expected).numpy()
    wanted = _CLIP_NOISE * _CLIP_NORM / batch_size
    setting = f"noise_multiplier={_CLIP_NOISE}, max_grad_norm={_CLIP_NORM}, batch size {batch_size}"
    if np.allclose(noise, 0.0, atol=1e-7):
        raise CheckFailed(
            f"With {setting} the result has no noise. Hint: add torch.normal(0.0, noise_multiplier * "
            "max_grad_norm, size=..., generator=generator) to the sum of clipped gradients."
        )
    spread = float(np.std(noise))
    if abs(np.mean(noise)) > 6 * spread / math.sqrt(size):
        raise CheckFailed(
            f"With {setting} the noise averages {np.mean(noise):.3g}, not 0. Hint: the noise must be "
            "centred; torch.rand gives numbers in [0, 1), torch.normal(0.0, std, ...) is centred."
        )
    shape = _shape_name(_mean_abs_over_std(noise))
    if shape != "gaussian":
        raise CheckFailed(
            f"With {setting} the noise does not look Gaussian (it looks {shape}). Hint: DP-SGD adds "
            "Gaussian noise: torch.normal or torch.randn."
        )
    if abs(spread / wanted - 1) > 0.06:
        for candidate, hint in _noise_mistakes(_CLIP_NOISE, _CLIP_NORM, batch_size):
            if abs(spread / candidate - 1) < 0.06:
                raise CheckFailed(f"With {setting} the clipping is right, but {hint}")
        raise CheckFailed(
            f"With {setting} the noise in the result has standard deviation {spread:.4g}, expected "
            f"{wanted:.4g} = noise_multiplier * max_grad_norm / batch size."
        )
    _passed("clip_and_noise is correct: per-example clipping, one Gaussian noise draw, divided by the batch size.")


# ---------------------------------------------------------------------------
# 04: choosing the noise multiplier for a budget


# Settings (target_epsilon, sample_rate, steps, delta) the learner's function must solve.
_BUDGETS = ((2.0, 0.016, 1250, 1e-5), (8.0, 0.05, 400, 1e-5))
# The answer may leave this much of the budget unspent; bisection to 0.01 in sigma does better.
_BUDGET_SLACK = 0.03


def _rdp_epsilon(noise_multiplier, sample_rate, steps, delta):
    return privacy.epsilon(
        noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta, accountant="rdp"
    )


def check_noise_multiplier_choice(choose_noise_multiplier):
    """Check ``choose_noise_multiplier(*, target_epsilon, sample_rate, steps, delta)``.

    The function must return (close to) the smallest noise multiplier whose RDP
    epsilon after ``steps`` steps at ``sample_rate`` stays at or below
    ``target_epsilon`` for ``delta``. The check tries two budgets and accepts an
    answer within the budget that spends at least 97% of it.

    Raises
    ------
    CheckFailed
        With a hint for: a non-positive or non-numeric answer, an answer over the
        budget (with a note when it fits the budget under PRV but not RDP), and
        more noise than needed.
    """
    _check_callable("choose_noise_multiplier", choose_noise_multiplier, "check_noise_multiplier_choice")
    for target_epsilon, sample_rate, steps, delta in _BUDGETS:
        setting = f"target_epsilon={target_epsilon}, sample_rate={sample_rate}, steps={steps}, delta={delta}"
        answer = _call(
            choose_noise_multiplier,
            "choose_noise_multiplier",
            target_epsilon=target_epsilon,
            sample_rate=sample_rate,
            steps=steps,
            delta=delta,
        )
        sigma = _as_real("choose_noise_multiplier", answer)
        if not math.isfinite(sigma) or sigma <= 0:
            raise CheckFailed(
                f"choose_noise_multiplier({setting}) returned {sigma}; a noise multiplier must be a positive "
                "finite number."
            )
        spent = _rdp_epsilon(sigma, sample_rate, steps, delta)
        if spent > target_epsilon * (1 + 1e-9):
            note = ""
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DPKitWarning)
                prv = privacy.epsilon(
                    noise_multiplier=sigma, sample_rate=sample_rate, steps=steps, delta=delta, accountant="prv"
                )
            if prv <= target_epsilon:
                note = (
                    f" It fits the budget under the PRV accountant (epsilon {prv:.3f}), but the exercise "
                    "uses RDP: call dpkit.privacy.epsilon with accountant='rdp'."
                )
            raise CheckFailed(
                f"choose_noise_multiplier({setting}) returned {sigma:.4g}, which spends epsilon = {spent:.3f} "
                f"(delta = {delta}, RDP accountant), over the budget of {target_epsilon}.{note} Hint: more "
                "noise means a smaller epsilon; when a candidate spends too much, search above it."
            )
        if spent < target_epsilon * (1 - _BUDGET_SLACK):
            smallest = privacy.noise_multiplier_for(
                target_epsilon=target_epsilon, sample_rate=sample_rate, steps=steps, delta=delta, accountant="rdp"
            )
            raise CheckFailed(
                f"choose_noise_multiplier({setting}) returned {sigma:.4g}, which spends only epsilon = "
                f"{spent:.3f} of the budget {target_epsilon} (delta = {delta}, RDP accountant): more noise "
                f"than needed, which costs accuracy. Hint: about {smallest:.3g} is enough; keep bisecting "
                "until the interval is narrower than 0.01."
            )
    _passed("choose_noise_multiplier is correct: within budget, with little noise to spare.")


# ---------------------------------------------------------------------------
# 05: reading the privacy-utility table


# (target epsilon, achieved epsilon, mean test accuracy) of the tables the check builds.
_LEVELS = (
    (0.5, 0.497, 0.62),
    (1.0, 0.996, 0.75),
    (2.0, 1.994, 0.84),
    (4.0, 3.991, 0.88),
    (8.0, 7.993, 0.91),
    (math.inf, math.inf, 0.97),
)
# A table whose accuracy dips at epsilon 4 (seed noise does that), in shuffled row order.
_BUMPY_LEVELS = (
    (4.0, 3.991, 0.84),
    (0.5, 0.497, 0.62),
    (math.inf, math.inf, 0.97),
    (8.0, 7.993, 0.91),
    (2.0, 1.994, 0.86),
    (1.0, 0.996, 0.75),
)


def _privacy_table(levels):
    """Build a table shaped like the output of dpkit.experiments.results_table."""
    import pandas as pd

    return pd.DataFrame(
        {
            "target_epsilon": [target for target, _, _ in levels],
            "epsilon": [achieved for _, achieved, _ in levels],
            "delta": [1e-5 if math.isfinite(target) else math.nan for target, _, _ in levels],
            "accountant": ["rdp" if math.isfinite(target) else "none" for target, _, _ in levels],
            "seeds": [3] * len(levels),
            "accuracy_mean": [accuracy for _, _, accuracy in levels],
            "accuracy_std": [0.01] * len(levels),
        }
    )


def _smallest_epsilon_answer(answer, call):
    """Convert the learner's answer to a float or None, or fail with a hint."""
    import pandas as pd

    if isinstance(answer, (pd.Series, pd.DataFrame)):
        raise CheckFailed(
            f"{call} returned a pandas {type(answer).__name__}, not one number. Hint: take the value out of "
            "the row, e.g. float(rows['epsilon'].min())."
        )
    if answer is None:
        return None
    return _as_real("smallest_epsilon", answer)


def check_smallest_epsilon(smallest_epsilon):
    """Check ``smallest_epsilon(table, target_accuracy)``: the most private level that is accurate enough.

    ``table`` is a :func:`dpkit.experiments.results_table` DataFrame with the
    columns ``target_epsilon``, ``epsilon`` (achieved), ``delta``, ``accountant``,
    ``seeds``, ``accuracy_mean`` and ``accuracy_std``, one row per privacy level
    and ``target_epsilon = inf`` for the non-private baseline. The function must
    return the smallest achieved ``epsilon`` among private rows whose
    ``accuracy_mean`` is at least ``target_accuracy``, or None when no private row
    reaches it.

    Raises
    ------
    CheckFailed
        With a hint for each of these mistakes: a pandas object in place of a
        number, the table changed in place, the non-private baseline returned, or
        the target epsilon in place of the achieved one. Also for an accuracy in
        place of an epsilon, the largest qualifying epsilon, ``>`` in place of
        ``>=``, reliance on the row order, and a number where None is due.
    """
    _check_callable("smallest_epsilon", smallest_epsilon, "check_smallest_epsilon")
    cases = (
        (_LEVELS, 0.80, 1.994),
        (_LEVELS, 0.88, 3.991),
        (_LEVELS, 0.50, 0.497),
        (_BUMPY_LEVELS, 0.85, 1.994),
        (_LEVELS, 0.95, None),
    )
    for levels, target_accuracy, expected in cases:
        table = _privacy_table(levels)
        before = table.copy()
        call = f"smallest_epsilon(table, {target_accuracy})"
        answer = _smallest_epsilon_answer(_call(smallest_epsilon, "smallest_epsilon", table, target_accuracy), call)
        if not table.equals(before):
            raise CheckFailed(
                f"{call} changed the table it was given. Hint: sort or filter into a new DataFrame "
                "(table.sort_values(...)) instead of using inplace=True."
            )
        if expected is None and answer is not None:
            reason = "no private level reaches that accuracy"
            if math.isinf(answer):
                reason = "only the non-private baseline reaches that accuracy, and it has no privacy guarantee"
            raise CheckFailed(
                f"{call} returned {answer}, but {reason}. Hint: return None when no private level meets the target."
            )
        if answer is None:
            if expected is not None:
                raise CheckFailed(
                    f"{call} returned None, but the level with epsilon = {expected} reaches mean accuracy "
                    f"{target_accuracy}. Hint: keep the private rows with accuracy_mean >= target_accuracy."
                )
            continue
        if math.isclose(answer, expected, abs_tol=1e-9):
            continue
        _explain_epsilon_mistake(call, answer, expected, levels, target_accuracy)
    _passed("smallest_epsilon is correct: the most private level that meets the accuracy target.")


def _explain_epsilon_mistake(call, answer, expected, levels, target_accuracy):
    private = [(target, achieved, accuracy) for target, achieved, accuracy in levels if math.isfinite(target)]
    qualifying = [achieved for _, achieved, accuracy in private if accuracy >= target_accuracy]
    strictly = [achieved for _, achieved, accuracy in private if accuracy > target_accuracy]
    targets = {achieved: target for target, achieved, _ in private}
    first_in_order = next(
        (achieved for target, achieved, accuracy in levels if math.isfinite(target) and accuracy >= target_accuracy),
        None,
    )
    stated = f"{call} returned {answer}, expected {expected}"

    if math.isinf(answer):
        raise CheckFailed(
            f"{stated}: the non-private baseline. Hint: skip the row with target_epsilon = inf; it has no "
            "privacy guarantee."
        )
    if math.isclose(answer, targets[expected], abs_tol=1e-9):
        raise CheckFailed(
            f"{stated}: that is the target epsilon of the right row. Hint: report the achieved epsilon "
            "(column 'epsilon'), which is what the run guarantees; it is at most the target."
        )
    if any(math.isclose(answer, accuracy, abs_tol=1e-9) for _, _, accuracy in levels):
        raise CheckFailed(f"{stated}: that is an accuracy. Hint: return the 'epsilon' of the row you found.")
    # The case with an accuracy equal to the target and the shuffled case come after a sorted
    # case, so a learner who takes the maximum fails first where only that mistake fits.
    if strictly and math.isclose(answer, min(strictly), abs_tol=1e-9):
        raise CheckFailed(
            f"{stated}. Hint: a level whose accuracy equals the target meets it: use >=, not >."
        )
    if first_in_order is not None and math.isclose(answer, first_in_order, abs_tol=1e-9):
        raise CheckFailed(
            f"{stated}: the first qualifying row in the table's order, which is not sorted here. Hint: take "
            "the minimum epsilon over the qualifying rows instead of relying on the row order."
        )
    if qualifying and math.isclose(answer, max(qualifying), abs_tol=1e-9):
        raise CheckFailed(
            f"{stated}: the largest epsilon that meets the target. Hint: the most private level has the "
            "smallest epsilon; use min(), not max()."
        )
    if math.isclose(answer, min(achieved for _, achieved, _ in private), abs_tol=1e-9):
        raise CheckFailed(
            f"{stated}: the smallest epsilon of all, whatever its accuracy. Hint: first keep the rows whose "
            "accuracy_mean is at least target_accuracy."
        )
    raise CheckFailed(f"{stated}.")


# ---------------------------------------------------------------------------
# 06: the true positive rate at a low false positive rate


def _tpr_cases():
    rng = np.random.default_rng(6)
    is_member = np.concatenate([np.ones(500, dtype=bool), np.zeros(1000, dtype=bool)])
    scores = rng.normal(size=1500) + 1.5 * is_member
    tied = np.round(scores, 1)
    small_scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    small_members = np.array([True, True, False, True, False, False])
    return (
        (scores, is_member, 0.01),
        (scores, is_member, 0.1),
        (tied, is_member, 0.05),
        (small_scores, small_members, 1 / 3),
    )


def _tpr_with(scores, is_member, fpr, *, strict=False):
    """TPR of the best threshold "member if score >= t" whose FPR is at most (or below) ``fpr``."""
    best = 0.0
    for threshold in np.unique(scores):
        called = scores >= threshold
        false_positive_rate = called[~is_member].mean()
        if false_positive_rate < fpr or (not strict and false_positive_rate <= fpr):
            best = max(best, called[is_member].mean())
    return float(best)


def _tpr_ranked_one_by_one(scores, is_member, fpr):
    # Walking down the ranking one example at a time splits tied scores, which no threshold can.
    order = np.argsort(-scores, kind="stable")
    true_positives = np.cumsum(is_member[order]) / is_member.sum()
    false_positives = np.cumsum(~is_member[order]) / (~is_member).sum()
    allowed = false_positives <= fpr
    return float(true_positives[allowed].max()) if allowed.any() else 0.0


def _tpr_interpolated(scores, is_member, fpr):
    roc_fpr, roc_tpr, _ = audit.roc(is_member, scores)
    return float(np.interp(fpr, roc_fpr, roc_tpr))


def check_tpr_at_fpr(tpr_at_fpr):
    """Check ``tpr_at_fpr(scores, is_member, fpr)``: the attack's TPR at a false positive rate of at most ``fpr``.

    ``scores`` is higher for candidates the attack believes are members and
    ``is_member`` contains their true membership (booleans). The function must return
    the highest true positive rate of a test "member if score >= t" over all
    thresholds t whose false positive rate is at most ``fpr``, as
    :func:`dpkit.audit.tpr_at_fpr` does.

    Raises
    ------
    CheckFailed
        With a hint for: a count in place of a rate, the sign of the scores
        flipped, an FPR strictly below ``fpr``, interpolation between ROC points,
        tied scores split between the two sides of a threshold, and other wrong
        values.
    """
    _check_callable("tpr_at_fpr", tpr_at_fpr, "check_tpr_at_fpr")
    for scores, is_member, fpr in _tpr_cases():
        expected = _tpr_with(scores, is_member, fpr)
        call = f"tpr_at_fpr(<{len(scores)} scores>, <{int(is_member.sum())} members>, {fpr:.3g})"
        given_scores, given_members = scores.copy(), is_member.copy()
        answer = _as_real("tpr_at_fpr", _call(tpr_at_fpr, "tpr_at_fpr", given_scores, given_members, fpr))
        if not (np.array_equal(given_scores, scores) and np.array_equal(given_members, is_member)):
            raise CheckFailed(
                f"{call} changed its input arrays. Hint: np.sort(scores) returns a sorted copy; "
                "scores.sort() sorts in place."
            )
        if math.isclose(answer, expected, abs_tol=1e-9):
            continue
        stated = f"{call} returned {answer:.4g}, expected {expected:.4g}"
        if answer > 1:
            raise CheckFailed(f"{stated}. Hint: divide the number of true positives by the number of members.")
        if math.isclose(answer, _tpr_with(-scores, is_member, fpr), abs_tol=1e-9):
            raise CheckFailed(
                f"{stated}: the scores were read the wrong way round. Hint: a higher score means 'member', "
                "so the test is score >= threshold."
            )
        if math.isclose(answer, _tpr_with(scores, is_member, fpr, strict=True), abs_tol=1e-9):
            raise CheckFailed(
                f"{stated}. Hint: a threshold whose FPR equals fpr is allowed: keep FPR <= fpr, not < fpr."
            )
        if math.isclose(answer, _tpr_interpolated(scores, is_member, fpr), abs_tol=1e-9):
            raise CheckFailed(
                f"{stated}: that is interpolated between two ROC points. Hint: report what one threshold "
                "reaches, the largest TPR among ROC points with FPR <= fpr, without np.interp."
            )
        if math.isclose(answer, _tpr_ranked_one_by_one(scores, is_member, fpr), abs_tol=1e-9):
            raise CheckFailed(
                f"{stated}: the scores contain ties, and walking down the ranking one example at a time "
                "puts some tied examples on each side. Hint: a threshold calls every example with "
                "score >= t a member, so loop over the distinct scores (np.unique) as thresholds."
            )
        raise CheckFailed(
            f"{stated}. Hint: for each distinct score t, call 'member' when score >= t, compute the FPR "
            "among non-members and the TPR among members, and keep the largest TPR with FPR <= fpr."
        )
    _passed("tpr_at_fpr is correct: the best single threshold within the false positive budget.")


# ---------------------------------------------------------------------------
# 07: the privacy line of a model card


def _fake_result(*, epsilon, delta, accountant, target_epsilon):
    from torch import nn

    from dpkit.training import TrainConfig, TrainResult

    config = TrainConfig(model="logreg", target_epsilon=target_epsilon, delta=delta or 1e-5, accountant=accountant or "rdp")
    return TrainResult(
        model=nn.Linear(30, 2),
        config=config,
        epsilon=epsilon,
        delta=delta,
        accountant=accountant,
        noise_multiplier=1.1 if target_epsilon is not None else None,
        sample_rate=0.25 if target_epsilon is not None else None,
        steps=120,
        test_accuracy=0.95,
    )


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_POWER_OF_TEN = re.compile(r"10\s*\^\s*\{?\s*([-−]\s*\d+)\s*\}?")


# Phrases of which a non-private run's line must contain one.
_NO_GUARANTEE_WORDS = ("non-private", "no privacy", "no guarantee", "not private", "without", "no dp", "inf", "∞")


def _numbers_in(text):
    """Return every number written in ``text``, including powers of ten written as 10^-5 or 10^{-5}."""
    values = [float(match) for match in _NUMBER.findall(text)]
    for power in _POWER_OF_TEN.findall(text):
        values.append(10.0 ** int(power.replace("−", "-").replace(" ", "")))
    return values


def check_privacy_line(privacy_line):
    """Check ``privacy_line(result)``: the privacy guarantee of a TrainResult as one line of a model card.

    For a private run the line must state the achieved epsilon (``result.epsilon``)
    with at least two decimals, its delta (``result.delta``, in any usual notation
    such as ``1e-05``) and its accountant (``result.accountant``). For a
    non-private run (``result.config.private`` is False) it must state that there
    is no privacy guarantee, for example "none (non-private)".

    Raises
    ------
    CheckFailed
        With a hint for: something other than a string, the target epsilon in
        place of the achieved one, too few decimals, a missing delta, a missing
        or hard-coded accountant, and a non-private run that crashes, shows None
        or claims a guarantee.
    """
    _check_callable("privacy_line", privacy_line, "check_privacy_line")
    private_cases = (
        # Rounded to one decimal, these epsilons differ from their targets, so that the
        # check can tell too few decimals from the target epsilon.
        _fake_result(epsilon=1.9347, delta=1e-5, accountant="rdp", target_epsilon=2.0),
        _fake_result(epsilon=7.9312, delta=1e-6, accountant="prv", target_epsilon=8.0),
    )
    for result in private_cases:
        setting = (
            f"a result with epsilon = {result.epsilon}, delta = {result.delta:g}, accountant = {result.accountant!r} "
            f"(target_epsilon {result.config.target_epsilon:g})"
        )
        line = _call(privacy_line, "privacy_line", result)
        if not isinstance(line, str):
            raise CheckFailed(f"privacy_line returned {_short(line)} for {setting}; a string was expected.")
        numbers = _numbers_in(line)
        if not any(abs(value - result.epsilon) <= 0.0051 for value in numbers):
            if any(math.isclose(value, result.config.target_epsilon) for value in numbers):
                hint = (
                    "it shows the target epsilon. Hint: the guarantee is the achieved epsilon, result.epsilon, "
                    "which is at most the target."
                )
            elif any(abs(value - result.epsilon) < 0.05 for value in numbers):
                hint = "it rounds epsilon to one decimal. Hint: show two decimals, f'{result.epsilon:.2f}'."
            else:
                hint = f"it does not show epsilon = {result.epsilon:.2f}. Hint: format result.epsilon with two decimals, f'{{result.epsilon:.2f}}'."
            raise CheckFailed(f"For {setting} privacy_line returned {line!r}: {hint}")
        if not any(math.isclose(value, result.delta, rel_tol=1e-6) for value in numbers):
            raise CheckFailed(
                f"For {setting} privacy_line returned {line!r}, which does not show delta = {result.delta:g}. "
                "Hint: an epsilon means nothing without its delta; add f'delta = {result.delta:g}'."
            )
        if result.accountant.lower() not in line.lower():
            other = [name for name in privacy.ACCOUNTANTS if name != result.accountant and name in line.lower()]
            extra = f" It names {other[0].upper()}: read the accountant from result.accountant." if other else ""
            raise CheckFailed(
                f"For {setting} privacy_line returned {line!r}, which does not name the {result.accountant.upper()} "
                f"accountant.{extra} Hint: the same run has different epsilons under different accountants."
            )

    baseline = _fake_result(epsilon=math.inf, delta=None, accountant=None, target_epsilon=None)
    try:
        line = _call(privacy_line, "privacy_line", baseline)
    except CheckFailed as failure:
        if failure.__cause__ is None:
            raise
        error = failure.__cause__
        raise CheckFailed(
            f"privacy_line raised {type(error).__name__}: {error} for a non-private result (epsilon inf, delta "
            "None, accountant None). Hint: check result.config.private first and return a line such as "
            "'none: trained without differential privacy'."
        ) from error
    if not isinstance(line, str):
        raise CheckFailed(f"privacy_line returned {_short(line)} for a non-private result; a string was expected.")
    if re.search(r"(delta|accountant)\W+None\b", line):
        raise CheckFailed(
            f"For a non-private result privacy_line returned {line!r}. Hint: a non-private run has no delta or "
            "accountant; say that the model has no privacy guarantee instead of formatting None."
        )
    if not any(word in line.lower() for word in _NO_GUARANTEE_WORDS):
        raise CheckFailed(
            f"For a non-private result privacy_line returned {line!r}, which reads like a guarantee. Hint: when "
            "result.config.private is False, say that there is no privacy guarantee."
        )
    _passed("privacy_line is correct: achieved epsilon with its delta and accountant, and no claim without DP.")
