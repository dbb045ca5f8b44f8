"""Tests for dpkit.grading: each check accepts the solution, rejects the stub, and names
the typical mistakes with the hint written for them."""

import logging
import math

import numpy as np
import pytest
import torch
from torch.nn import functional

from dpkit import grading, privacy
from dpkit.grading import CheckFailed


def stub(*args, **kwargs):
    raise NotImplementedError()


def assert_fails_with(check, function, *fragments):
    with pytest.raises(CheckFailed) as failure:
        check(function)
    message = str(failure.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_check_failed_is_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


@pytest.mark.parametrize(
    "check",
    [
        grading.check_count_above,
        grading.check_laplace_mechanism,
        grading.check_loss_attack,
        grading.check_clip_and_noise,
        grading.check_noise_multiplier_choice,
    ],
)
def test_stub_reported_not_implemented(check):
    assert_fails_with(check, stub, "not implemented yet")


@pytest.mark.parametrize(
    "check",
    [
        grading.check_count_above,
        grading.check_laplace_mechanism,
        grading.check_loss_attack,
        grading.check_clip_and_noise,
        grading.check_noise_multiplier_choice,
    ],
)
def test_non_callable_raises_value_error(check):
    with pytest.raises(ValueError, match="must be a function, got 3.0"):
        check(3.0)


def test_crash_reported_with_cause():
    def broken(values, threshold):
        return values[100]

    with pytest.raises(CheckFailed, match="raised IndexError") as failure:
        grading.check_count_above(broken)
    assert isinstance(failure.value.__cause__, IndexError)


def test_success_logged_outside_ipython(caplog):
    with caplog.at_level(logging.INFO, logger="dpkit.grading"):
        result = grading.check_count_above(lambda values, threshold: sum(v > threshold for v in values))
    assert result is None
    assert "count_above is correct" in caplog.text


# ---------------------------------------------------------------------------
# count_above


def test_count_above_accepts_solution():
    grading.check_count_above(lambda values, threshold: sum(1 for v in values if v > threshold))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda values, threshold: sum(v >= threshold for v in values), "use > instead of >="),
        (lambda values, threshold: sum(v > threshold for v in values) / max(len(values), 1), "not the fraction"),
        (lambda values, threshold: [v for v in values if v > threshold], "not a number"),
        (lambda values, threshold: None, "returned None"),
        (lambda values, threshold: 3, "expected 4"),
    ],
    ids=["greater-or-equal", "fraction", "list", "none", "constant"],
)
def test_count_above_mistakes(answer, hint):
    assert_fails_with(grading.check_count_above, answer, hint)


# ---------------------------------------------------------------------------
# laplace_mechanism


def laplace_solution(true_value, *, sensitivity, epsilon, rng):
    return true_value + rng.laplace(0.0, sensitivity / epsilon)


def laplace_with_scale(formula):
    def laplace_mechanism(true_value, *, sensitivity, epsilon, rng):
        return true_value + rng.laplace(0.0, formula(sensitivity, epsilon))

    return laplace_mechanism


def test_laplace_accepts_solution():
    grading.check_laplace_mechanism(laplace_solution)


def test_laplace_accepts_exponential_difference():
    # A Laplace draw is also the difference of two exponential draws of the same scale.
    def laplace_mechanism(true_value, *, sensitivity, epsilon, rng):
        scale = sensitivity / epsilon
        return true_value + rng.exponential(scale) - rng.exponential(scale)

    grading.check_laplace_mechanism(laplace_mechanism)


def test_laplace_accepts_numpy_scalar():
    grading.check_laplace_mechanism(lambda v, **k: np.float32(laplace_solution(v, **k)))


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (laplace_with_scale(lambda s, e: s * e), "sensitivity * epsilon"),
        (laplace_with_scale(lambda s, e: e / s), "epsilon / sensitivity"),
        (laplace_with_scale(lambda s, e: 1 / e), "the sensitivity is missing"),
        (laplace_with_scale(lambda s, e: s), "epsilon is missing"),
        (laplace_with_scale(lambda s, e: s / e / math.sqrt(2)), "not the standard deviation"),
        (laplace_with_scale(lambda s, e: 3 * s / e), "its scale is"),
        (lambda v, *, sensitivity, epsilon, rng: v + rng.normal(0.0, sensitivity / epsilon), "Gaussian"),
        (lambda v, *, sensitivity, epsilon, rng: v + rng.uniform(-3, 3) * sensitivity / epsilon, "rng.uniform"),
        (lambda v, *, sensitivity, epsilon, rng: v, "no noise was added"),
        (lambda v, *, sensitivity, epsilon, rng: v + rng.exponential(sensitivity / epsilon), "not centred"),
        (lambda v, *, sensitivity, epsilon, rng: v + 5 + rng.laplace(0.0, sensitivity / epsilon), "not centred"),
        (lambda v, *, sensitivity, epsilon, rng: v + np.random.laplace(0.0, sensitivity / epsilon), "from the rng argument"),
        (
            lambda v, *, sensitivity, epsilon, rng: v + np.random.default_rng(0).laplace(0.0, sensitivity / epsilon),
            "the same on every call",
        ),
        (lambda v, *, sensitivity, epsilon, rng: None, "returned None"),
        (lambda v, *, sensitivity, epsilon, rng: rng.laplace(0.0, 1.0, size=3), "one number was expected"),
    ],
    ids=[
        "times-epsilon", "inverted", "no-sensitivity", "no-epsilon", "std-as-scale", "other-scale", "gaussian",
        "uniform", "no-noise", "one-sided", "offset", "global-rng", "constant-noise", "none", "array",
    ],
)
def test_laplace_mistakes(answer, hint):
    assert_fails_with(grading.check_laplace_mechanism, answer, hint)


# ---------------------------------------------------------------------------
# loss_scores


def loss_solution(logits, labels):
    return -functional.cross_entropy(logits, labels, reduction="none")


def test_loss_attack_accepts_solution():
    grading.check_loss_attack(loss_solution)


def test_loss_attack_accepts_monotone_transforms():
    grading.check_loss_attack(lambda logits, labels: torch.softmax(logits, dim=1)[torch.arange(len(labels)), labels])
    grading.check_loss_attack(lambda logits, labels: loss_solution(logits, labels).numpy().tolist())


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (lambda logits, labels: functional.cross_entropy(logits, labels, reduction="none"), "return minus the loss"),
        (lambda logits, labels: (logits.argmax(dim=1) == labels).float(), "that is accuracy, not loss"),
        (lambda logits, labels: -functional.cross_entropy(logits, labels), "reduction='none'"),
        (lambda logits, labels: logits[torch.arange(len(labels)), labels], "raw logit of the true class"),
        (lambda logits, labels: torch.softmax(logits, dim=1).max(dim=1).values, "whatever the label"),
        (
            lambda logits, labels: torch.log(torch.softmax(100 * logits, dim=1))[torch.arange(len(labels)), labels],
            "NaN or infinite",
        ),
        (lambda logits, labels: logits.sub_(1.0)[:, 0], "in place"),
        (lambda logits, labels: torch.rand(len(labels), generator=torch.Generator().manual_seed(0)), "does not rank"),
        (lambda logits, labels: None, "returned None"),
    ],
    ids=["sign-flipped", "accuracy", "batch-mean", "raw-logit", "ignores-label", "nan", "in-place", "random", "none"],
)
def test_loss_attack_mistakes(answer, hint):
    assert_fails_with(grading.check_loss_attack, answer, hint)


# ---------------------------------------------------------------------------
# clip_and_noise


def clip_and_noise_solution(per_sample_grads, *, max_grad_norm, noise_multiplier, generator):
    norms = per_sample_grads.norm(dim=1, keepdim=True)
    clipped = per_sample_grads * torch.clamp(max_grad_norm / (norms + 1e-6), max=1.0)
    noise = torch.normal(0.0, noise_multiplier * max_grad_norm, size=per_sample_grads.shape[1:], generator=generator)
    return (clipped.sum(dim=0) + noise) / len(per_sample_grads)


def clip_and_noise_variant(clip="rows", divide=1, noise_std=None, noise="normal", use_generator=True):
    """Build a clip_and_noise with one typical mistake."""

    def clip_and_noise(grads, *, max_grad_norm, noise_multiplier, generator):
        batch_size, size = grads.shape
        if clip == "rows":
            clipped = grads * torch.clamp(max_grad_norm / grads.norm(dim=1, keepdim=True), max=1.0)
        elif clip == "no-min":
            clipped = grads * (max_grad_norm / grads.norm(dim=1, keepdim=True))
        elif clip == "sum":
            total = grads.sum(dim=0, keepdim=True)
            clipped = total * min(1.0, max_grad_norm / total.norm().item())
        elif clip == "coordinates":
            clipped = grads.clamp(-max_grad_norm, max_grad_norm)
        elif clip == "batch-dim":
            clipped = grads * torch.clamp(max_grad_norm / grads.norm(dim=0, keepdim=True), max=1.0)
        else:
            clipped = grads
        std = (noise_std or (lambda s, c, b: s * c))(noise_multiplier, max_grad_norm, batch_size)
        options = {"generator": generator} if use_generator else {}
        if noise_multiplier == 0 or noise == "none":
            added = torch.zeros(size)
        elif noise == "laplace":
            added = torch.distributions.Laplace(0.0, std).sample((size,))
        elif noise == "uniform":
            added = (torch.rand(size, **options) - 0.5) * std * math.sqrt(12)
        elif noise == "positive":
            added = torch.rand(size, **options) * std
        else:
            added = torch.normal(0.0, std, size=(size,), **options)
        total = clipped.sum(dim=0) + added
        return {0: total, 1: total / batch_size, 2: total / batch_size**2}[divide]

    return clip_and_noise


def test_clip_and_noise_accepts_solution():
    grading.check_clip_and_noise(clip_and_noise_solution)


def test_clip_and_noise_accepts_numpy_result():
    grading.check_clip_and_noise(lambda grads, **options: clip_and_noise_solution(grads, **options).numpy())


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        (clip_and_noise_variant(clip="sum"), "the summed gradient was clipped"),
        (clip_and_noise_variant(clip="no-min"), "min(1, max_grad_norm / norm)"),
        (clip_and_noise_variant(clip="coordinates"), "each coordinate was clamped"),
        (clip_and_noise_variant(clip="none"), "nothing was clipped"),
        (clip_and_noise_variant(clip="batch-dim"), "norms were taken over the batch"),
        (clip_and_noise_variant(divide=0), "sum of the clipped gradients"),
        (clip_and_noise_variant(divide=2), "divided by the batch size twice"),
        (clip_and_noise_variant(noise_std=lambda s, c, b: s), "missing the factor max_grad_norm"),
        (clip_and_noise_variant(noise_std=lambda s, c, b: s * c * b), "not divided by the batch size"),
        (clip_and_noise_variant(noise_std=lambda s, c, b: s * c * math.sqrt(b)), "its own noise"),
        (clip_and_noise_variant(noise_std=lambda s, c, b: s * b), "noise_multiplier itself"),
        (clip_and_noise_variant(noise_std=lambda s, c, b: 3 * s * c), "expected 0.08125"),
        (clip_and_noise_variant(noise="none"), "has no noise"),
        (clip_and_noise_variant(noise="laplace"), "pass the generator"),
        (clip_and_noise_variant(noise="uniform"), "does not look Gaussian"),
        (clip_and_noise_variant(noise="positive"), "not 0"),
        (clip_and_noise_variant(use_generator=False), "pass the generator"),
        (lambda grads, **options: grads, "one row per example"),
        (lambda grads, **options: grads.sum(), "shape ()"),
        (lambda grads, **options: None, "returned None"),
    ],
    ids=[
        "clip-sum", "no-min", "clamp", "no-clip", "batch-dim", "no-divide", "divide-twice", "noise-without-c",
        "noise-not-divided", "noise-per-example", "noise-multiplier-only", "other-std", "no-noise",
        "laplace-noise", "uniform-noise", "positive-noise", "no-generator", "rows", "scalar", "none",
    ],
)
def test_clip_and_noise_mistakes(answer, hint):
    assert_fails_with(grading.check_clip_and_noise, answer, hint)


def test_clip_and_noise_detects_in_place_change():
    def clip_in_place(grads, *, max_grad_norm, noise_multiplier, generator):
        grads.mul_(torch.clamp(max_grad_norm / grads.norm(dim=1, keepdim=True), max=1.0))
        noise = torch.normal(0.0, noise_multiplier * max_grad_norm, size=grads.shape[1:], generator=generator)
        return (grads.sum(dim=0) + noise) / len(grads)

    assert_fails_with(grading.check_clip_and_noise, clip_in_place, "changed per_sample_grads in place")


def test_clip_and_noise_laplace_hint_with_seeded_noise():
    # Laplace noise drawn through the generator passes the reproducibility step, so the shape test decides.
    def laplace_noise(grads, *, max_grad_norm, noise_multiplier, generator):
        clipped = grads * torch.clamp(max_grad_norm / grads.norm(dim=1, keepdim=True), max=1.0)
        uniform = torch.rand(grads.shape[1], generator=generator, dtype=grads.dtype) - 0.5
        scale = noise_multiplier * max_grad_norm / math.sqrt(2)
        noise = -scale * torch.sign(uniform) * torch.log1p(-2 * uniform.abs())
        return (clipped.sum(dim=0) + noise) / len(grads)

    assert_fails_with(grading.check_clip_and_noise, laplace_noise, "does not look Gaussian", "laplace")


# ---------------------------------------------------------------------------
# choose_noise_multiplier


def choose_by_bisection(*, target_epsilon, sample_rate, steps, delta):
    low, high = 0.1, 20.0
    while high - low > 0.005:
        middle = (low + high) / 2
        spent = privacy.epsilon(noise_multiplier=middle, sample_rate=sample_rate, steps=steps, delta=delta)
        low, high = (middle, high) if spent > target_epsilon else (low, middle)
    return high


def test_noise_choice_accepts_bisection():
    grading.check_noise_multiplier_choice(choose_by_bisection)


def test_noise_choice_accepts_library_answer():
    grading.check_noise_multiplier_choice(lambda **settings: privacy.noise_multiplier_for(**settings))


@pytest.mark.parametrize(
    ("answer", "hints"),
    [
        (lambda **settings: 0.9 * choose_by_bisection(**settings), ["over the budget", "search above it"]),
        (lambda **settings: 1.3 * choose_by_bisection(**settings), ["more noise than needed", "about 1.45"]),
        (lambda **settings: -1.0, ["positive finite number"]),
        (lambda **settings: float("nan"), ["positive finite number"]),
        (lambda **settings: "1.5", ["one number was expected"]),
    ],
    ids=["too-little-noise", "too-much-noise", "negative", "nan", "string"],
)
def test_noise_choice_mistakes(answer, hints):
    assert_fails_with(grading.check_noise_multiplier_choice, answer, *hints)


def test_noise_choice_notes_prv_answer():
    def choose_with_prv(**settings):
        return privacy.noise_multiplier_for(**settings, accountant="prv")

    assert_fails_with(grading.check_noise_multiplier_choice, choose_with_prv, "over the budget", "PRV accountant")
