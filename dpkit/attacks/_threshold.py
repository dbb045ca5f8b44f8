"""Threshold attacks on one model output (Yeom et al. 2018).

Yeom, Giacomelli, Fredrikson and Jha, "Privacy Risk in Machine Learning:
Analyzing the Connection to Overfitting", CSF 2018. A model fits its training
examples better than unseen ones, so a low loss or a high confidence on the
true class suggests membership. Thresholding the score at any value gives one
point of the ROC curve; the attacks return the scores and leave the threshold
to the ROC.
"""

from dpkit.attacks import _signals
from dpkit.attacks._result import AttackResult
from dpkit.attacks._validation import as_features, as_labels, as_membership, check_model


def _candidates(model, X, y, is_member):
    check_model(model)
    X = as_features("X", X)
    labels = as_labels("y", y, len(X))
    membership = as_membership(is_member, len(X), of="X")
    return _signals.model_logits(model, X), labels, membership


def loss_attack(model, X, y, is_member):
    """Score candidates by minus their cross-entropy loss under ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The target model.
    X : tensor or array of shape (n, ...)
        Candidate examples.
    y : array_like of int, shape (n,)
        Their true labels.
    is_member : array_like of bool or 0/1, shape (n,)
        Whether each candidate was in the target's training set (both must occur).

    Returns
    -------
    AttackResult
        ``scores`` are ``-loss`` in nats, so higher means "more likely a member".

    Examples
    --------
    >>> import numpy as np
    >>> from dpkit.data import load, membership_split
    >>> from dpkit.training import TrainConfig, train
    >>> split = membership_split(load("digits"), n_members=200, seed=0)
    >>> target = train(split.member_data(), TrainConfig(model="mlp", epochs=30, batch_size=32), progress=False)
    >>> X = np.concatenate([split.member_data()[0], split.non_member_data()[0]])
    >>> y = np.concatenate([split.member_data()[1], split.non_member_data()[1]])
    >>> result = loss_attack(target.model, X, y, np.repeat([True, False], 200))
    >>> result.auc() > 0.5
    True
    """
    logits, labels, membership = _candidates(model, X, y, is_member)
    scores = -_signals.cross_entropy(logits, labels)
    return AttackResult("loss", scores, membership, {"name": "loss", "n_candidates": len(labels), "signal": "-cross_entropy"})


def confidence_attack(model, X, y, is_member):
    """Score candidates by the softmax probability of their true class under ``model``.

    Parameters and return value are those of :func:`loss_attack`; ``scores`` are
    probabilities in [0, 1]. A confident model saturates many of them at 1.0 in
    float64 (ties), which the loss attack separates better.
    """
    logits, labels, membership = _candidates(model, X, y, is_member)
    scores = _signals.true_class_probability(logits, labels)
    return AttackResult(
        "confidence", scores, membership, {"name": "confidence", "n_candidates": len(labels), "signal": "true_class_probability"}
    )
