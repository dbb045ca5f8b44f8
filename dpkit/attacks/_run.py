"""Several attacks on one target in one call, as the main job runs them."""

import inspect
import logging
import time

import numpy as np

from dpkit._checks import check_choice, invalid
from dpkit.attacks._lira import lira
from dpkit.attacks._rmia import rmia
from dpkit.attacks._shadow import shadow_attack
from dpkit.attacks._threshold import confidence_attack, loss_attack
from dpkit.attacks._validation import as_features, as_index

logger = logging.getLogger(__name__)

# Attack name -> (function, fixed keyword arguments).
ATTACKS = {
    "loss": (loss_attack, {}),
    "confidence": (confidence_attack, {}),
    "shadow": (shadow_attack, {}),
    "lira": (lira, {"online": True}),
    "lira_offline": (lira, {"online": False}),
    "rmia": (rmia, {"online": False}),
    "rmia_online": (rmia, {"online": True}),
}
_NEEDS_BANK = ("lira", "lira_offline", "rmia", "rmia_online")


def _keyword_options(function):
    parameters = inspect.signature(function).parameters.values()
    return {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def run_attacks(model, *, bank, X_pool, y_pool, index, is_member, attacks=("loss", "lira"), **options):
    """Run several membership-inference attacks against one target model.

    Parameters
    ----------
    model : torch.nn.Module
        The target model.
    bank : ReferenceBank or None
        Reference models trained on ``(X_pool, y_pool)``; may be None when no
        attack in ``attacks`` needs one.
    X_pool, y_pool : the pool the bank was trained on
    index : array_like of int
        Pool positions of the candidates; threshold and shadow attacks query
        ``X_pool[index]``.
    is_member : array_like of bool or 0/1
        Whether each candidate trained the target.
    attacks : sequence of str, default ("loss", "lira")
        Any of ``"loss"``, ``"confidence"``, ``"shadow"``, ``"lira"`` (online),
        ``"lira_offline"``, ``"rmia"`` (offline) and ``"rmia_online"``.
    **options
        Keyword options passed to every attack that accepts them, e.g.
        ``n_reference=4`` (LiRA and RMIA), ``fixed_variance``, ``gamma``, ``a``,
        ``n_population_z``, or ``shadow_X``, ``shadow_y`` and ``config`` for the
        shadow attack. An option that no chosen attack accepts raises
        ``ValueError``; ``online`` is set by the attack's name.

    Returns
    -------
    dict of str to AttackResult
        One result per attack, in the order of ``attacks``.
    """
    if isinstance(attacks, str):
        attacks = (attacks,)
    for name in attacks:
        check_choice("attacks", name, tuple(ATTACKS))
    if len(set(attacks)) != len(attacks):
        raise invalid("attacks", "a sequence of distinct attack names", list(attacks), "List each attack once.")
    if "online" in options:
        raise invalid("online", "not given to run_attacks", options["online"], 'Ask for "lira" or "lira_offline", "rmia" or "rmia_online".')
    accepted = set()
    for name in attacks:
        accepted |= _keyword_options(ATTACKS[name][0])
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise invalid(
            "options",
            f"keyword options of the chosen attacks ({', '.join(sorted(accepted - {'online'}))})",
            unknown,
            "Check the spelling, or add the attack that takes the option.",
        )
    if bank is None and any(name in _NEEDS_BANK for name in attacks):
        raise invalid("bank", "a ReferenceBank for LiRA and RMIA", None, "Train one with ReferenceBank.train(X_pool, y_pool, ...).")

    features = as_features("X_pool", X_pool)
    labels = np.asarray(y_pool)
    candidates = as_index(index, len(features))

    results = {}
    for name in attacks:
        function, fixed = ATTACKS[name]
        chosen = {key: value for key, value in options.items() if key in _keyword_options(function)}
        started = time.perf_counter()
        if name in _NEEDS_BANK:
            result = function(model, bank, index=candidates, is_member=is_member, X_pool=features, y_pool=labels, **fixed, **chosen)
        else:
            result = function(model, features[candidates], labels[candidates], is_member, **chosen)
        result.settings["seconds"] = time.perf_counter() - started
        logger.info("attack %s: AUC %.3f in %.2f s", name, result.auc(), result.settings["seconds"])
        results[name] = result
    return results
