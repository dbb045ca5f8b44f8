"""Membership-inference metrics, DP bounds on them, and empirical epsilon lower bounds.

Inputs follow scikit-learn: ``y_true`` marks members with 1 and non-members with 0,
and ``y_score`` is higher for examples the attack believes are members. Every
function is pure and works on numpy arrays.

The package has four parts:

* ROC metrics of an attack: :func:`roc`, :func:`auc`, :func:`tpr_at_fpr`,
  :func:`membership_advantage`, :func:`bootstrap_ci` and :func:`summarize`.
* Upper bounds that a DP guarantee puts on any attack: :func:`dp_roc_bound`,
  :func:`gdp_roc_bound`, :func:`advantage_bound`, :func:`gdp_advantage_bound`,
  with the Gaussian DP helpers :func:`dp_sgd_mu` and :func:`gdp_epsilon`.
* Empirical lower bounds on epsilon from attack results: :func:`clopper_pearson`
  and :func:`epsilon_lower_bound`.
* The one-run canary audit of Steinke, Nasr and Jagielski (2023):
  :func:`one_run_audit` and :func:`one_run_audit_best`.

A DP guarantee bounds every attack from above, and an audit bounds epsilon from
below. If an audit's lower bound exceeds the accountant's epsilon, the training
code or its accounting is wrong.
"""

# math and np are here for the docstring examples, which doctest runs in this
# package's namespace (see __test__ below).
import math  # noqa: F401
import numpy as np  # noqa: F401

from dpkit.audit._bounds import (
    advantage_bound,
    dp_roc_bound,
    dp_sgd_mu,
    gdp_advantage_bound,
    gdp_epsilon,
    gdp_roc_bound,
)
from dpkit.audit._lower_bound import EpsilonBound, clopper_pearson, epsilon_lower_bound
from dpkit.audit._metrics import auc, bootstrap_ci, membership_advantage, roc, summarize, tpr_at_fpr
from dpkit.audit._one_run import OneRunAuditResult, one_run_audit, one_run_audit_best

__all__ = [
    "EpsilonBound",
    "OneRunAuditResult",
    "advantage_bound",
    "auc",
    "bootstrap_ci",
    "clopper_pearson",
    "dp_roc_bound",
    "dp_sgd_mu",
    "epsilon_lower_bound",
    "gdp_advantage_bound",
    "gdp_epsilon",
    "gdp_roc_bound",
    "membership_advantage",
    "one_run_audit",
    "one_run_audit_best",
    "roc",
    "summarize",
    "tpr_at_fpr",
]

# doctest.testmod(dpkit.audit) skips objects defined in other modules, so the
# examples of the re-exported functions are listed here for it to find.
__test__ = {name: globals()[name] for name in __all__}
