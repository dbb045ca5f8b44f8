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
=====================================  ======================================  ========
"""

import logging
import math
import numbers
import warnings

import numpy as np
import torch
from scipy import stats
from torch.nn import functional

from dpkit import privacy
from dpkit._checks import DPKitWarning, invalid

logger = logging.getLogger(__name__)

__all__ = [
    "CheckFailed",
    "check_clip_and_noise",
    "check_count_above",
    "check_laplace_mechanism",
    "check_loss_attack",
    "check_noise_multiplier_choice",
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
