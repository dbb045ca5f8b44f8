"""Checks of the exercises in notebooks 05 to 07: each accepts the solution and rejects
the stub and typical wrong answers with a hint."""

import numpy as np
import pytest

from dpkit import grading


def smallest_epsilon(table, target_accuracy):
    private = table[np.isfinite(table["target_epsilon"])]
    good_enough = private[private["accuracy_mean"] >= target_accuracy]
    if good_enough.empty:
        return None
    return float(good_enough["epsilon"].min())


def smallest_target_epsilon(table, target_accuracy):
    private = table[np.isfinite(table["target_epsilon"])]
    good_enough = private[private["accuracy_mean"] >= target_accuracy]
    return None if good_enough.empty else float(good_enough["target_epsilon"].min())


def largest_epsilon(table, target_accuracy):
    private = table[np.isfinite(table["target_epsilon"])]
    good_enough = private[private["accuracy_mean"] >= target_accuracy]
    return None if good_enough.empty else float(good_enough["epsilon"].max())


def tpr_at_fpr(scores, is_member, fpr):
    best = 0.0
    for threshold in np.unique(scores):
        called_member = scores >= threshold
        if called_member[~is_member].mean() <= fpr:
            best = max(best, called_member[is_member].mean())
    return float(best)


def tpr_at_fpr_flipped(scores, is_member, fpr):
    return tpr_at_fpr(-np.asarray(scores), is_member, fpr)


def privacy_line(result):
    if not result.config.private:
        return "none: trained without differential privacy"
    return f"epsilon = {result.epsilon:.2f}, delta = {result.delta:g} ({result.accountant.upper()} accountant)"


def privacy_line_without_delta(result):
    if not result.config.private:
        return "none: trained without differential privacy"
    return f"epsilon = {result.epsilon:.2f} ({result.accountant.upper()} accountant)"


def stub(*args, **kwargs):
    raise NotImplementedError()


CASES = [
    (grading.check_smallest_epsilon, smallest_epsilon, [smallest_target_epsilon, largest_epsilon]),
    (grading.check_tpr_at_fpr, tpr_at_fpr, [tpr_at_fpr_flipped]),
    (grading.check_privacy_line, privacy_line, [privacy_line_without_delta]),
]


@pytest.mark.parametrize(("check", "solution", "wrong"), CASES, ids=["05", "06", "07"])
def test_check_accepts_solution(check, solution, wrong):
    check(solution)


@pytest.mark.parametrize(("check", "solution", "wrong"), CASES, ids=["05", "06", "07"])
def test_check_rejects_stub(check, solution, wrong):
    with pytest.raises(grading.CheckFailed, match="not implemented"):
        check(stub)


@pytest.mark.parametrize(("check", "solution", "wrong"), CASES, ids=["05", "06", "07"])
def test_check_rejects_wrong_answers(check, solution, wrong):
    for answer in wrong:
        with pytest.raises(grading.CheckFailed):
            check(answer)
