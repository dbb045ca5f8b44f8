"""Per-example signals computed from a model's logits.

The signal functions take logits of shape ``(n, num_classes)`` and integer labels of
shape ``(n,)`` and return a float64 numpy array of shape ``(n,)``. The maths
runs in float64 so that confident predictions keep distinct values.
"""

import torch
from torch.nn import functional

from dpkit.training import predict_logits


def _as_float64(logits, labels):
    logits = torch.as_tensor(logits).double()
    labels = torch.as_tensor(labels, dtype=torch.int64)
    return logits, labels


def cross_entropy(logits, labels):
    """Compute the per-example cross-entropy loss ``-log p_y``, in nats."""
    logits, labels = _as_float64(logits, labels)
    return functional.cross_entropy(logits, labels, reduction="none").numpy()


def true_class_probability(logits, labels):
    """Compute the softmax probability of the true class, ``p_y``."""
    logits, labels = _as_float64(logits, labels)
    return torch.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1).numpy()


def logit_confidence(logits, labels):
    """Compute the logit-scaled confidence ``phi = log(p_y / (1 - p_y))``.

    Computed as ``z_y - logsumexp(z_j for j != y)``, which equals the formula above
    but stays finite where ``p_y`` rounds to 1 in floating point.
    """
    logits, labels = _as_float64(logits, labels)
    true_logit = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return (true_logit - torch.logsumexp(others, dim=1)).numpy()


def model_logits(model, X):
    """Return the logits of ``model`` on ``X`` as a CPU tensor (eval mode, no gradients)."""
    return predict_logits(model, torch.as_tensor(X, dtype=torch.float32))

