"""Membership-inference attacks behind one interface.

Every attack returns an :class:`AttackResult` whose ``scores`` are higher for
candidates the attack believes are members, with ROC metrics from
:mod:`dpkit.audit`.

* Threshold attacks on one output of the target: :func:`loss_attack` and
  :func:`confidence_attack` (Yeom et al. 2018).
* The shadow-model attack, a classifier trained on shadow models' outputs:
  :func:`shadow_attack` (Shokri et al. 2017).
* Attacks calibrated per example by reference models from a shared
  :class:`ReferenceBank`: :func:`lira` (Carlini et al. 2022) and :func:`rmia`
  (Zarifzadeh et al. 2024).
* :func:`run_attacks` runs several of them on one target.
"""

from dpkit.attacks._bank import ReferenceBank, balanced_assignment
from dpkit.attacks._lira import FIXED_VARIANCE_BELOW, lira
from dpkit.attacks._result import AttackResult
from dpkit.attacks._rmia import rmia
from dpkit.attacks._run import ATTACKS, run_attacks
from dpkit.attacks._shadow import attack_features, shadow_attack
from dpkit.attacks._threshold import confidence_attack, loss_attack

__all__ = [
    "ATTACKS",
    "AttackResult",
    "FIXED_VARIANCE_BELOW",
    "ReferenceBank",
    "attack_features",
    "balanced_assignment",
    "confidence_attack",
    "lira",
    "loss_attack",
    "rmia",
    "run_attacks",
    "shadow_attack",
]
