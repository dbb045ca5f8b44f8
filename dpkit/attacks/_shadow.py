"""The shadow-model attack (Shokri et al. 2017).

Shokri, Stronati, Song and Shmatikov, "Membership Inference Attacks Against
Machine Learning Models", IEEE S&P 2017. The attacker trains shadow models like
the target on data of its own, so it has the membership labels of every shadow
model's training set. A classifier then learns to tell members from non-members by the
shadow models' outputs, and is applied to the target's outputs.
"""

import dataclasses
import logging

import numpy as np
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from dpkit._checks import check_int, invalid
from dpkit.attacks import _signals
from dpkit.attacks._bank import _build_model
from dpkit.attacks._result import AttackResult
from dpkit.attacks._validation import as_features, as_labels, as_membership, check_model
from dpkit.training import TrainConfig, train

logger = logging.getLogger(__name__)


def attack_features(logits, labels, *, top_k=3):
    """Compute the attack features of each example, shape ``(n, top_k + 2)``.

    The ``top_k`` largest log-softmax values in decreasing order (the shape of the
    output, whatever the class), then the logit-scaled confidence of the true
    class and the cross-entropy loss (how well the model fits the true label).
    """
    logits = torch.as_tensor(logits).double()
    top = torch.log_softmax(logits, dim=1).sort(dim=1, descending=True).values[:, :top_k].numpy()
    return np.column_stack([top, _signals.logit_confidence(logits, labels), _signals.cross_entropy(logits, labels)])


def default_classifier():
    """Build the default attack classifier: standardised features into a logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def _describe(classifier):
    if hasattr(classifier, "steps"):
        return " -> ".join(type(step).__name__ for _, step in classifier.steps)
    return type(classifier).__name__


def _member_probability(classifier, features):
    column = list(classifier.classes_).index(True)
    return classifier.predict_proba(features)[:, column]


def shadow_attack(
    model,
    X,
    y,
    is_member,
    *,
    shadow_X,
    shadow_y,
    config,
    n_shadow=4,
    seed=0,
    classifier=None,
    per_class=False,
    top_k=3,
    model_fn=None,
    progress=True,
):
    """Run the shadow-model attack against ``model`` for the candidates ``(X, y)``.

    Parameters
    ----------
    model : torch.nn.Module
        The target model.
    X : tensor or array of shape (n, ...)
        Candidate examples.
    y : array_like of int, shape (n,)
    is_member : array_like of bool or 0/1, shape (n,)
        Whether each candidate trained the target (both must occur).
    shadow_X, shadow_y : the attacker's own data
        Drawn from the same distribution as the target's data, ideally disjoint
        from the candidates. Each shadow model trains on a random half of it.
    config : TrainConfig
        How each shadow model is trained, ideally the target's recipe.
    n_shadow : int, default 4
        Number of shadow models, >= 1.
    seed : int, default 0
        Seeds the halves and the shadow models' training.
    classifier : scikit-learn classifier, optional
        Any estimator with ``fit`` and ``predict_proba``; it is cloned, never
        fitted in place. Defaults to :func:`default_classifier`; a
        ``sklearn.ensemble.GradientBoostingClassifier`` also works well.
    per_class : bool, default False
        Fit one classifier per true class, as in the paper. Classes whose shadow
        examples are all members or all non-members use the global classifier.
    top_k : int, default 3
        Number of sorted log-softmax values among the features (see :func:`attack_features`).
    model_fn : callable, optional
        ``model_fn()`` returns a fresh model; defaults to ``config.model``.
    progress : bool, default True
        Show a progress bar over shadow models.

    Returns
    -------
    AttackResult
        Named ``"shadow"``; scores are the classifier's member probabilities.
    """
    check_model(model)
    X = as_features("X", X)
    labels = as_labels("y", y, len(X))
    membership = as_membership(is_member, len(X), of="X")
    shadow_features = as_features("shadow_X", shadow_X)
    shadow_labels = as_labels("shadow_y", shadow_y, len(shadow_features), x_name="shadow_X")
    if not isinstance(config, TrainConfig):
        raise invalid("config", "a dpkit.training.TrainConfig", type(config).__name__, "Pass the target's training settings.")
    if len(shadow_features) < 2:
        raise invalid("shadow_X", "at least 2 examples", len(shadow_features), "Each shadow model trains on half of the shadow data.")
    config.validate(n_train=len(shadow_features) // 2)
    n_shadow = check_int("n_shadow", n_shadow, "Train at least 1 shadow model; 4 to 16 is usual.")
    seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
    top_k = check_int("top_k", top_k, "Use a small number of top probabilities such as 3.")
    if classifier is None:
        classifier = default_classifier()
    elif not (hasattr(classifier, "fit") and hasattr(classifier, "predict_proba")):
        raise invalid(
            "classifier", "a scikit-learn classifier with fit and predict_proba", type(classifier).__name__, "Pass e.g. LogisticRegression()."
        )

    target_logits = _signals.model_logits(model, X)
    num_classes = target_logits.shape[1]
    top_k = min(top_k, num_classes)

    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    model_seeds = np.random.SeedSequence([seed, 4]).generate_state(n_shadow).astype(np.int64) % (2**31)
    training_features, training_membership, training_labels = [], [], []
    shadow_label_tensor = torch.as_tensor(shadow_labels)
    for s in tqdm(range(n_shadow), desc="shadow models", unit="model", disable=not progress, leave=False):
        in_half = np.zeros(len(shadow_features), dtype=bool)
        in_half[rng.permutation(len(shadow_features))[: len(shadow_features) // 2]] = True
        shadow_model = _build_model(config, model_fn, tuple(X.shape[1:]), num_classes, int(model_seeds[s]))
        members = torch.as_tensor(np.flatnonzero(in_half))
        result = train(
            (shadow_features[members], shadow_label_tensor[members]),
            config.replace(seed=int(model_seeds[s])),
            model=shadow_model,
            progress=False,
        )
        logits = _signals.model_logits(result.model, shadow_features)
        training_features.append(attack_features(logits, shadow_labels, top_k=top_k))
        training_membership.append(in_half)
        training_labels.append(shadow_labels)
        logger.info("shadow model %d/%d trained in %.2f s", s + 1, n_shadow, result.seconds)

    features = np.concatenate(training_features)
    targets = np.concatenate(training_membership)
    feature_labels = np.concatenate(training_labels)
    global_classifier = clone(classifier).fit(features, targets)

    candidate_features = attack_features(target_logits, labels, top_k=top_k)
    scores = _member_probability(global_classifier, candidate_features)
    fitted_classes = []
    if per_class:
        for label in np.unique(labels):
            rows = feature_labels == label
            if len(np.unique(targets[rows])) < 2:
                continue
            class_classifier = clone(classifier).fit(features[rows], targets[rows])
            chosen = labels == label
            scores[chosen] = _member_probability(class_classifier, candidate_features[chosen])
            fitted_classes.append(int(label))

    settings = {
        "name": "shadow",
        "n_shadow": n_shadow,
        "n_shadow_examples": len(shadow_features),
        "seed": seed,
        "classifier": _describe(classifier),
        "per_class": bool(per_class),
        "per_class_fitted": fitted_classes,
        "top_k": top_k,
        "n_candidates": len(labels),
        "config": dataclasses.asdict(config),
    }
    return AttackResult("shadow", scores, membership, settings)
