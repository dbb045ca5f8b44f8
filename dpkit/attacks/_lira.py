"""The likelihood ratio attack, LiRA (Carlini et al. 2022).

Carlini, Chien, Nasr, Song, Terzis and Tramer, "Membership Inference Attacks
From First Principles", IEEE S&P 2022. The statistic is the logit-scaled
confidence ``phi = log(p_y / (1 - p_y))``, which is close to Gaussian across
models trained with (IN) or without (OUT) an example. Reference models from a
:class:`~dpkit.attacks.ReferenceBank` give each candidate its own IN and OUT
Gaussians, and the target's ``phi`` is tested against them:

* online: score = log N(phi; mu_in, sigma_in) - log N(phi; mu_out, sigma_out),
  the log-likelihood ratio of "member" against "non-member";
* offline: score = log Pr[phi_out <= phi], a one-sided test against the OUT
  Gaussian alone, which needs no model trained on the candidate.

The paper also queries augmented copies of each example; dpkit queries the
example alone.
"""

import numpy as np
from scipy import stats

from dpkit._checks import invalid
from dpkit.attacks import _signals
from dpkit.attacks._bank import ReferenceBank
from dpkit.attacks._result import AttackResult
from dpkit.attacks._validation import as_index, as_membership, check_model

#: Below this many reference models, ``fixed_variance=None`` means a global variance.
#: Carlini et al. (2022) report that per-example variances need about 64 models.
FIXED_VARIANCE_BELOW = 64

# Floor on a standard deviation in phi units, so that a model whose outputs do not
# vary at all on an example cannot produce a division by zero.
_MIN_STD = 1e-4


def check_bank(bank):
    if not isinstance(bank, ReferenceBank):
        raise invalid("bank", "a dpkit.attacks.ReferenceBank", type(bank).__name__, "Train one with ReferenceBank.train(...).")
    return bank


def _masked_moments(values, mask):
    """Compute the per-column mean, sum of squared deviations and count of ``values`` where ``mask`` is True."""
    count = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.full(values.shape[1], np.nan), where=count > 0)
    squares = np.where(mask, (values - mean) ** 2, 0.0).sum(axis=0)
    return mean, squares, count


def _pooled_std(values, mask):
    """Estimate one global standard deviation from the within-example variances pooled over all examples.

    Returns None when no example has two values to estimate a variance from.
    """
    _, squares, count = _masked_moments(values, mask)
    degrees = np.clip(count - 1, 0, None).sum()
    if degrees == 0:
        return None
    return max(float(np.sqrt(squares.sum() / degrees)), _MIN_STD)


def _per_example_std(values, mask):
    _, squares, count = _masked_moments(values, mask)
    return np.maximum(np.sqrt(squares / (count - 1)), _MIN_STD)


def lira(
    model,
    bank,
    *,
    index,
    is_member,
    X_pool,
    y_pool,
    online=True,
    fixed_variance=None,
    n_reference=None,
):
    """Run LiRA against ``model`` for the pool examples at ``index``.

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
        Checked against the bank's fingerprint.
    online : bool, default True
        True compares IN and OUT Gaussians; False tests against the OUT Gaussian
        only (see the module docstring).
    fixed_variance : bool or None, default None
        True fits one global standard deviation for IN and one for OUT, pooled
        over every pool example; False fits one per example. None picks True
        below 64 reference models, where per-example variances are too noisy.
        With 2 reference models each example has one IN and one OUT value, and
        IN and OUT share the spread of all values, which leaves the ranking of
        the online score unchanged.
    n_reference : int, optional
        Use the first ``n_reference`` models of the bank; defaults to all of
        them. Even and >= 2, so that every candidate has ``n_reference / 2`` IN
        and as many OUT models (the bank's models come in complementary pairs).
        The offline attack uses only the OUT half of them.

    Returns
    -------
    AttackResult
        Named ``"lira"`` (online) or ``"lira_offline"``.

    Examples
    --------
    >>> from dpkit.data import load, membership_split
    >>> from dpkit.training import TrainConfig, train
    >>> ds = load("digits")
    >>> split = membership_split(ds, n_members=200, seed=0)
    >>> pool = np.concatenate([split.members, split.non_members, split.population])
    >>> X_pool, y_pool = ds.X_train[pool], ds.y_train[pool]
    >>> config = TrainConfig(model="mlp", epochs=5, batch_size=32)
    >>> target = train(split.member_data(), config, progress=False)
    >>> bank = ReferenceBank.train(X_pool, y_pool, n_models=4, config=config, progress=False)
    >>> candidates = np.arange(400)  # the members, then the non-members
    >>> result = lira(target.model, bank, index=candidates, is_member=candidates < 200, X_pool=X_pool, y_pool=y_pool)
    >>> result.name, result.settings["n_reference"], result.settings["fixed_variance"]
    ('lira', 4, True)
    >>> 0 <= result.tpr_at_fpr(0.01) <= 1
    True
    """
    check_model(model)
    check_bank(bank)
    X, y = bank._check_pool(X_pool, y_pool)
    candidates = as_index(index, bank.n_pool)
    membership = as_membership(is_member, len(candidates), of="index")
    count = bank._reference_count(n_reference, minimum=2, even=True)
    if fixed_variance is None:
        fixed_variance = count < FIXED_VARIANCE_BELOW
    elif not isinstance(fixed_variance, (bool, np.bool_)):
        raise invalid("fixed_variance", "True, False or None", fixed_variance, "Leave it as None to choose by bank size.")
    if not fixed_variance and count < 4:
        raise invalid(
            "fixed_variance",
            "True with fewer than 4 reference models",
            fixed_variance,
            "Per-example variances need at least 2 IN and 2 OUT values per example; use fixed_variance=True or more models.",
        )

    phi_all = bank.phi[:count]
    in_all = bank.in_mask[:count]
    target_phi = _signals.logit_confidence(_signals.model_logits(model, X[candidates]), y[candidates])
    scores = lira_scores(phi_all, in_all, candidates, target_phi, online=bool(online), fixed_variance=bool(fixed_variance))

    settings = {
        "name": "lira" if online else "lira_offline",
        "online": bool(online),
        "fixed_variance": bool(fixed_variance),
        "n_reference": count,
        "n_candidates": len(candidates),
        "signal": "logit_confidence",
        "bank": bank.settings(),
    }
    return AttackResult(settings["name"], scores, membership, settings)


def lira_scores(phi, in_mask, candidates, target_phi, *, online, fixed_variance):
    """Compute LiRA scores from reference statistics: the maths of :func:`lira` without the checks.

    ``phi`` and ``in_mask`` have shape ``(n_models, n_pool)``; ``candidates``
    indexes the pool and ``target_phi`` is the target's ``phi`` on them.
    Global standard deviations are pooled over the whole pool.
    """
    out_mask = ~in_mask
    mean_out = _masked_moments(phi[:, candidates], out_mask[:, candidates])[0]
    if fixed_variance:
        std_in, std_out = _pooled_std(phi, in_mask), _pooled_std(phi, out_mask)
        if std_in is None or std_out is None:
            # NOTE: one IN and one OUT value per example leave no within-example spread
            # to estimate, so both use the spread of all values. A shared scale does not
            # change the ranking of online or offline scores.
            std_in = std_out = max(float(phi.std()), _MIN_STD)
    else:
        std_in = _per_example_std(phi[:, candidates], in_mask[:, candidates])
        std_out = _per_example_std(phi[:, candidates], out_mask[:, candidates])

    if not online:
        return stats.norm.logcdf(target_phi, loc=mean_out, scale=std_out)
    mean_in = _masked_moments(phi[:, candidates], in_mask[:, candidates])[0]
    return stats.norm.logpdf(target_phi, loc=mean_in, scale=std_in) - stats.norm.logpdf(
        target_phi, loc=mean_out, scale=std_out
    )
