"""The result type shared by every membership-inference attack."""

import numbers
from dataclasses import dataclass, field

import numpy as np

from dpkit import audit


@dataclass
class AttackResult:
    """Scores of one membership-inference attack on a set of candidates.

    Attributes
    ----------
    name : str
        Attack name, e.g. ``"loss"``, ``"lira"`` or ``"rmia"``.
    scores : numpy.ndarray of float, shape (n,)
        One score per candidate; higher means "more likely a member".
    is_member : numpy.ndarray of bool, shape (n,)
        True membership of each candidate in the target's training set.
    settings : dict
        Everything that produced the scores: the attack's name and options and,
        for reference-model attacks, the bank's settings.

    The metric methods delegate to :mod:`dpkit.audit`, which reads ``is_member`` as
    ``y_true`` and ``scores`` as ``y_score``.
    """

    name: str
    scores: np.ndarray
    is_member: np.ndarray
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=float)
        self.is_member = np.asarray(self.is_member, dtype=bool)
        if self.scores.shape != self.is_member.shape or self.scores.ndim != 1:
            raise ValueError(
                f"scores and is_member must be 1-D arrays of the same length, got shapes {self.scores.shape} "
                f"and {self.is_member.shape}. Pass one score and one membership label per candidate."
            )

    def __repr__(self):
        return (
            f"AttackResult({self.name!r}, candidates={len(self.scores)}, members={int(self.is_member.sum())})"
        )

    def roc(self, *, drop_intermediate=False):
        """Compute the ROC curve ``(fpr, tpr, thresholds)``; see :func:`dpkit.audit.roc`."""
        return audit.roc(self.is_member, self.scores, drop_intermediate=drop_intermediate)

    def auc(self):
        """Compute the area under the ROC curve; see :func:`dpkit.audit.auc`."""
        return audit.auc(self.is_member, self.scores)

    def tpr_at_fpr(self, fpr):
        """Return the highest TPR among thresholds with FPR at most ``fpr``; see :func:`dpkit.audit.tpr_at_fpr`."""
        return audit.tpr_at_fpr(self.is_member, self.scores, fpr=fpr)

    def advantage(self):
        """Compute the membership advantage, the maximum of TPR - FPR; see :func:`dpkit.audit.membership_advantage`."""
        return audit.membership_advantage(self.is_member, self.scores)

    def summary(self, **options):
        """Summarize the attack in a flat dict of its scalar settings and metrics, ready for a table row.

        ``options`` go to :func:`dpkit.audit.summarize` (``fprs``, ``ci``,
        ``n_bootstrap``, ``confidence``, ``seed``). Settings that are not scalars,
        such as the bank's nested settings, are left out of the row, and the
        attack's name is stored under ``"attack"``.
        """
        row = {"attack": self.name}
        for key, value in self.settings.items():
            if key == "name":
                continue
            if isinstance(value, (str, bool, numbers.Number)) or value is None:
                row[key] = value
        row.update(audit.summarize(self.is_member, self.scores, **options))
        return row
