"""Input checks shared by the attacks; each raises ``ValueError`` naming the parameter."""

import numpy as np
import torch
from torch import nn

from dpkit._checks import invalid


def check_model(model, name="model"):
    if not isinstance(model, nn.Module):
        raise invalid(name, "a torch.nn.Module", type(model).__name__, "Pass the trained model, e.g. TrainResult.model.")
    return model


def as_features(name, X):
    try:
        features = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X, dtype=torch.float32)
    except (TypeError, ValueError):
        raise invalid(name, "an array or tensor of numbers", type(X).__name__, "Pass features as a float tensor.") from None
    if features.ndim < 2:
        raise invalid(name, "an array with one row per example", f"shape {tuple(features.shape)}", "Pass X with shape (n, ...).")
    return features


def as_labels(name, y, n_examples, x_name="X"):
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise invalid(name, "a 1-D array of integer class labels", f"dtype {labels.dtype}, shape {labels.shape}", "Pass labels as int64.")
    if len(labels) != n_examples:
        raise invalid(name, f"as long as {x_name} ({n_examples} examples)", f"{len(labels)} labels", f"Pass one label per row of {x_name}.")
    if labels.size and labels.min() < 0:
        raise invalid(name, "class labels >= 0", int(labels.min()), "Encode classes as 0, 1, ..., num_classes - 1.")
    return labels.astype(np.int64)


def as_membership(is_member, n_examples, of="X"):
    """Check ``is_member`` (bool or 0/1, one per example, both classes present) and return a bool array."""
    labels = np.asarray(is_member)
    if labels.ndim != 1:
        raise invalid("is_member", "a 1-D array", f"shape {labels.shape}", "Pass one True/False per candidate.")
    if labels.dtype != bool:
        if labels.dtype.kind not in "iuf" or not np.all(np.isin(labels, (0, 1))):
            found = np.unique(labels)[:5].tolist() if labels.dtype.kind in "iufUSb" else labels.dtype
            raise invalid(
                "is_member", "boolean or 0/1 (True or 1 for members)", f"values {found}", "Encode members as True and non-members as False."
            )
        labels = labels.astype(bool)
    if len(labels) != n_examples:
        raise invalid("is_member", f"as long as {of} ({n_examples})", f"length {len(labels)}", f"Pass one entry per candidate in {of}.")
    n_members = int(labels.sum())
    if n_members == 0 or n_members == len(labels):
        raise invalid(
            "is_member",
            "a mix of members and non-members",
            f"{n_members} members out of {len(labels)} candidates",
            "Attack metrics compare the two groups; include candidates of both kinds.",
        )
    return labels


def as_index(index, n_pool):
    """Check pool indices of the candidates: 1-D, integer, unique, in ``[0, n_pool)``."""
    values = np.asarray(index)
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iu":
        raise invalid(
            "index", "a non-empty 1-D array of integer pool indices", f"dtype {values.dtype}, shape {values.shape}", "Pass positions into X_pool."
        )
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= n_pool:
        bad = low if low < 0 else high
        raise invalid("index", f"pool indices in [0, {n_pool - 1}]", bad, f"X_pool contains {n_pool} examples; pass positions into it.")
    if len(np.unique(values)) != len(values):
        raise invalid("index", "free of repeated indices", f"{len(values) - len(np.unique(values))} repeats", "Query each candidate once.")
    return values.astype(np.int64)
