"""The relative membership inference attack, RMIA (Zarifzadeh et al. 2024).

Zarifzadeh, Liu, Lee and Shokri, "Low-Cost High-Power Membership Inference
Attacks", ICML 2024. RMIA compares a candidate ``x`` with population examples
``z`` that the target did not train on. With ``Pr(x | theta)`` the target's
softmax probability of the true class and ``Pr(x)`` its average over reference
models, the score of ``x`` is the fraction of population examples ``z`` with::

    (Pr(x | theta) / Pr(x)) / (Pr(z | theta) / Pr(z)) > gamma

Dividing by ``Pr(x)`` removes how easy ``x`` is for any model, and comparing
with many ``z`` calibrates the ratio against examples known to be non-members.

``Pr(x)`` averages over models trained with and without ``x``. The online form
estimates it as ``(mean IN + mean OUT) / 2``. The offline form needs OUT models
only and assumes that training on ``x`` raises its probability linearly,
``Pr_IN(x) ~ a * Pr_OUT(x) + (1 - a)``, so that::

    Pr(x) = ((1 + a) * Pr_OUT(x) + (1 - a)) / 2

The paper tunes ``a`` by attacking one reference model with the others; dpkit
takes it as a parameter (default 0.3).

For a fixed set of ``z``, the score is a non-decreasing function of
``Pr(x | theta) / Pr(x)``, so the ROC curve is that ratio's ROC curve, except
that candidates beating the same number of ``z`` tie. With few ``z``, many
candidates tie at the top score, which lowers the TPR at low FPR: use
thousands of population examples where the data allows.
"""

import numpy as np

from dpkit._checks import check_int, check_positive, check_unit_interval, invalid
from dpkit.attacks import _signals
from dpkit.attacks._lira import check_bank
from dpkit.attacks._result import AttackResult
from dpkit.attacks._validation import as_index, as_membership, check_model


def _masked_mean(values, mask):
    count = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(values.shape[1], np.nan), where=count > 0)


def marginal_probability(probability, in_mask, *, online, a):
    """Estimate ``Pr(x)`` for every pool example from reference models.

    ``probability`` and ``in_mask`` have shape ``(n_models, n_pool)``. Offline,
    an example with no OUT model among them (possible only with one model) gets
    its OUT probability from its IN probability by inverting the linear
    approximation, ``Pr_OUT = (Pr_IN - (1 - a)) / a``, clipped to [0, 1].
    """
    mean_in = _masked_mean(probability, in_mask)
    mean_out = _masked_mean(probability, ~in_mask)
    if online:
        return (mean_in + mean_out) / 2
    missing = np.isnan(mean_out)
    if missing.any():
        mean_out[missing] = np.clip((mean_in[missing] - (1 - a)) / a, 0.0, 1.0)
    return ((1 + a) * mean_out + (1 - a)) / 2


def rmia_scores(target_probability_x, marginal_x, target_probability_z, marginal_z, *, gamma):
    """Compute, per candidate ``x``, the fraction of population examples ``z`` that it beats by more than ``gamma``.

    Inputs are 1-D arrays of probabilities; the result has one score in [0, 1]
    per candidate.
    """
    tiny = np.finfo(float).tiny
    ratio_x = target_probability_x / np.maximum(marginal_x, tiny)
    ratio_z = np.sort(target_probability_z / np.maximum(marginal_z, tiny))
    # ratio_x / ratio_z > gamma  <=>  ratio_z < ratio_x / gamma, counted by a binary search.
    return np.searchsorted(ratio_z, ratio_x / gamma, side="left") / len(ratio_z)


def rmia(
    model,
    bank,
    *,
    index,
    is_member,
    X_pool,
    y_pool,
    n_reference=None,
    online=False,
    gamma=1.0,
    a=0.3,
    n_population_z=None,
    seed=0,
):
    """Run RMIA against ``model`` for the pool examples at ``index``.

    Parameters
    ----------
    model : torch.nn.Module
        The target model.
    bank : ReferenceBank
        Reference models trained on ``(X_pool, y_pool)``.
    index : array_like of int, shape (n,)
        Pool positions of the candidates, distinct, in ``[0, n_pool)``.
    is_member : array_like of bool or 0/1, shape (n,)
        Whether each candidate trained the target (both must occur).
    X_pool, y_pool : the pool the bank was trained on
        The pool examples outside ``index`` serve as the population ``z``; they
        should not have trained the target.
    n_reference : int, optional
        Use the first ``n_reference`` models of the bank; defaults to all. Offline
        RMIA works from 1 model; for an even ``n_reference`` each example has
        ``n_reference / 2`` OUT models (the bank's models come in complementary
        pairs). With 1 model, examples that trained it get ``Pr(x)`` through the
        inverted approximation (see :func:`marginal_probability`).
    online : bool, default False
        Estimate ``Pr(x)`` from IN and OUT models (needs an even ``n_reference``)
        instead of the offline approximation from OUT models.
    gamma : float, default 1.0
        Threshold on the likelihood ratio of ``x`` over ``z``, > 0.
    a : float, default 0.3
        Offline approximation parameter in [0, 1]: ``Pr_IN(x) ~ a * Pr_OUT(x) + (1 - a)``.
        ``a = 1`` treats ``Pr(x)`` as the OUT average alone. With 1 reference
        model it must be > 0.
    n_population_z : int, optional
        Number of population examples ``z``, drawn without replacement from the
        pool examples outside ``index``; defaults to all of them.
    seed : int, default 0
        Seed of the draw of ``z``.

    Returns
    -------
    AttackResult
        Named ``"rmia"`` (offline) or ``"rmia_online"``. Scores lie in [0, 1] in
        steps of ``1 / n_population_z``.

    Examples
    --------
    >>> from dpkit.attacks import ReferenceBank
    >>> from dpkit.data import load, membership_split
    >>> from dpkit.training import TrainConfig, train
    >>> ds = load("digits")
    >>> split = membership_split(ds, n_members=200, seed=0)
    >>> pool = np.concatenate([split.members, split.non_members, split.population])
    >>> X_pool, y_pool = ds.X_train[pool], ds.y_train[pool]
    >>> config = TrainConfig(model="mlp", epochs=5, batch_size=32)
    >>> target = train(split.member_data(), config, progress=False)
    >>> bank = ReferenceBank.train(X_pool, y_pool, n_models=2, config=config, progress=False)
    >>> candidates = np.arange(400)  # the members, then the non-members
    >>> result = rmia(target.model, bank, index=candidates, is_member=candidates < 200, X_pool=X_pool, y_pool=y_pool)
    >>> result.name, result.settings["n_reference"], result.settings["n_population_z"]
    ('rmia', 2, 1037)
    """
    check_model(model)
    check_bank(bank)
    X, y = bank._check_pool(X_pool, y_pool)
    candidates = as_index(index, bank.n_pool)
    membership = as_membership(is_member, len(candidates), of="index")
    count = bank._reference_count(n_reference, minimum=2 if online else 1, even=bool(online))
    gamma = check_positive("gamma", gamma, "Use gamma=1 to compare likelihood ratios directly, or a value such as 2.")
    a = check_unit_interval("a", a, "Use a in [0, 1], e.g. 0.3.", low_open=False)
    if not online and count == 1 and a == 0:
        raise invalid("a", "> 0 with 1 reference model", a, "With a = 0 the approximation gives no OUT probability from an IN one; use a = 0.3.")
    seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)

    outside = np.setdiff1d(np.arange(bank.n_pool), candidates)
    if len(outside) == 0:
        raise invalid(
            "index",
            "a subset of the pool that leaves population examples outside it",
            f"all {bank.n_pool} pool examples",
            "Train the bank on a pool that also holds examples the target did not train on.",
        )
    if n_population_z is None:
        population = outside
    else:
        n_population_z = check_int("n_population_z", n_population_z, f"Use between 1 and {len(outside)}.", minimum=1)
        if n_population_z > len(outside):
            raise invalid(
                "n_population_z",
                f"at most the {len(outside)} pool examples outside index",
                n_population_z,
                f"Use at most {len(outside)}, or None for all of them.",
            )
        population = np.sort(np.random.default_rng(seed).choice(outside, size=n_population_z, replace=False))

    marginal = marginal_probability(bank.true_class_probability[:count], bank.in_mask[:count], online=bool(online), a=a)
    queried = np.concatenate([candidates, population])
    target_probability = _signals.true_class_probability(_signals.model_logits(model, X[queried]), y[queried])
    n = len(candidates)
    scores = rmia_scores(target_probability[:n], marginal[candidates], target_probability[n:], marginal[population], gamma=gamma)

    settings = {
        "name": "rmia_online" if online else "rmia",
        "online": bool(online),
        "n_reference": count,
        "gamma": gamma,
        "a": None if online else a,
        "n_population_z": len(population),
        "seed": seed,
        "n_candidates": n,
        "signal": "true_class_probability",
        "bank": bank.settings(),
    }
    return AttackResult(settings["name"], scores, membership, settings)
