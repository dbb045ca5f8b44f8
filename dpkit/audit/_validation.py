"""Input checks shared by the audit functions."""

import numpy as np

from dpkit._checks import check_non_negative, check_open_unit, check_unit_interval, invalid


# ---------------------------------------------------------------------------
# input checks


def _as_labels(name, y_true):
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise invalid(name, "a 1-D array", f"an array of shape {labels.shape}", "Pass one label per example.")
    if labels.dtype == bool:
        return labels
    if labels.dtype.kind not in "iuf" or not np.all(np.isin(labels, (0, 1))):
        found = np.unique(labels)[:5].tolist() if labels.dtype.kind in "iufUS" else labels.dtype
        raise invalid(
            name,
            "binary (1 or True for members, 0 or False for non-members)",
            f"values {found}",
            "Encode members as 1 and non-members as 0.",
        )
    return labels.astype(bool)


def _as_scores(name, y_score):
    try:
        scores = np.asarray(y_score, dtype=float)
    except (TypeError, ValueError):
        raise invalid(name, "an array of real numbers", y_score, "Pass numeric attack scores.") from None
    if scores.ndim != 1:
        raise invalid(name, "a 1-D array", f"an array of shape {scores.shape}", "Pass one score per example.")
    if np.isnan(scores).any():
        raise invalid(
            name,
            "free of NaN",
            f"{int(np.isnan(scores).sum())} NaN values",
            "Drop those examples or give them the lowest score.",
        )
    if np.isinf(scores).any():
        raise invalid(
            name,
            "finite",
            f"{int(np.isinf(scores).sum())} infinite values",
            "Replace them with large finite values, e.g. np.nan_to_num(y_score), which keeps the ranking.",
        )
    return scores


def _check_pair(y_true, y_score, *, true_name="y_true", score_name="y_score", both_classes=True):
    labels = _as_labels(true_name, y_true)
    scores = _as_scores(score_name, y_score)
    if labels.shape != scores.shape:
        raise ValueError(
            f"{true_name} and {score_name} must have the same length, got {labels.size} and {scores.size}. "
            "Pass one label and one score per example."
        )
    if both_classes:
        n_members = int(labels.sum())
        if n_members == 0 or n_members == labels.size:
            raise invalid(
                true_name,
                "a mix of members (1) and non-members (0)",
                f"{n_members} members out of {labels.size} examples",
                "The metrics compare the two groups, so include at least one example of each.",
            )
    return labels, scores


def _check_fpr(fpr, name="fpr"):
    try:
        targets = np.asarray(fpr, dtype=float)
    except (TypeError, ValueError):
        targets = None
    valid = targets is not None and targets.ndim <= 1 and targets.size > 0
    if not valid or np.isnan(targets).any() or not np.all((targets > 0) & (targets < 1)):
        raise invalid(name, "a number or 1-D array in the open interval (0, 1)", fpr, "Use 0.001 for an FPR of 0.1%.")
    return targets


def _check_curve_fpr(fpr):
    # Bound curves are drawn over the whole axis, so 0 and 1 are allowed here.
    try:
        points = np.asarray(fpr, dtype=float)
    except (TypeError, ValueError):
        points = None
    if points is None or np.isnan(points).any() or not np.all((points >= 0) & (points <= 1)):
        raise invalid("fpr", "a number or array in [0, 1]", fpr, "Pass false positive rates, e.g. np.linspace(0, 1, 101).")
    return points


def _check_epsilon(epsilon):
    return check_non_negative("epsilon", epsilon, "Use the epsilon of the guarantee, a finite number >= 0.")


def _check_delta(delta):
    fix = "Use delta=0 for pure DP or a small delta such as 1e-5."
    return check_unit_interval("delta", delta, fix, low_open=False, high_open=True)


def _check_mu(mu):
    return check_non_negative("mu", mu, "Use the mu of the mu-GDP guarantee, a finite number >= 0 (see dp_sgd_mu).")


def _check_confidence(confidence):
    return check_open_unit("confidence", confidence, "Use confidence=0.95 for a 95% bound.")


def _as_output(values):
    return float(values) if np.ndim(values) == 0 else values
