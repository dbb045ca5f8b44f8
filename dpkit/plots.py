"""Matplotlib figures. Every function returns the Figure; saving and showing are up to the caller."""

import math

import numpy as np
from matplotlib.figure import Figure


def _figure(figsize=(6, 4), ax=None):
    if ax is not None:
        return ax.figure, ax
    # A Figure made without pyplot is not registered with pyplot, so it never stacks
    # up in a notebook and needs no plt.close.
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def privacy_utility(table, *, ax=None, title=None):
    """Plot test accuracy (mean and standard deviation over seeds) against epsilon.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`dpkit.experiments.results_table`: columns
        ``target_epsilon``, ``epsilon``, ``delta``, ``accountant``,
        ``accuracy_mean``, ``accuracy_std``. The non-private row
        (``target_epsilon`` = inf) is drawn as a horizontal line.
    """
    figure, ax = _figure(ax=ax)
    private = table[np.isfinite(table["target_epsilon"])]
    baseline = table[~np.isfinite(table["target_epsilon"])]
    std = private["accuracy_std"].fillna(0.0)
    ax.errorbar(private["epsilon"], private["accuracy_mean"], yerr=std, marker="o", capsize=3, label="DP-SGD")
    if not baseline.empty:
        ax.axhline(baseline["accuracy_mean"].iloc[0], color="grey", linestyle="--", label="non-private")
    ax.set_xscale("log")
    ax.set_xlabel(_epsilon_label(private))
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "Privacy-utility trade-off")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return figure


def _epsilon_label(table):
    if table.empty:
        return "epsilon"
    delta, accountant = table["delta"].iloc[0], table["accountant"].iloc[0]
    return f"epsilon (delta = {delta:g}, {accountant} accountant)"


def attack_auc(table, *, attacks=None, ax=None, title=None):
    """Plot membership-inference AUC against epsilon for each attack, with the chance level."""
    figure, ax = _figure(ax=ax)
    private = table[np.isfinite(table["target_epsilon"])]
    baseline = table[~np.isfinite(table["target_epsilon"])]
    names = attacks or [c[: -len("_auc")] for c in table.columns if c.endswith("_auc")]
    for name in names:
        line = ax.plot(private["epsilon"], private[f"{name}_auc"], marker="o", label=name)[0]
        if not baseline.empty:
            ax.axhline(baseline[f"{name}_auc"].iloc[0], color=line.get_color(), linestyle="--", alpha=0.6,
                       label=f"{name}, non-private")
    ax.axhline(0.5, color="black", linewidth=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel(_epsilon_label(private))
    ax.set_ylabel("attack AUC")
    ax.set_title(title or "Membership inference against epsilon")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def roc_curves(curves, *, bounds=None, ax=None, title=None, low=1e-4):
    """Plot ROC curves on log-log axes, optionally with DP bound curves.

    Parameters
    ----------
    curves : dict of label -> (fpr, tpr)
    bounds : dict of label -> (fpr, tpr), optional
        Drawn dashed in the colour of the curve with the same label, if any.
    low : float
        Smallest rate shown on both axes.
    """
    figure, ax = _figure(figsize=(5.5, 5), ax=ax)
    colors = {}
    for label, (fpr, tpr) in curves.items():
        fpr, tpr = np.clip(np.asarray(fpr, float), low, 1), np.clip(np.asarray(tpr, float), low, 1)
        colors[label] = ax.plot(fpr, tpr, label=label)[0].get_color()
    for label, (fpr, tpr) in (bounds or {}).items():
        fpr, tpr = np.clip(np.asarray(fpr, float), low, 1), np.clip(np.asarray(tpr, float), low, 1)
        ax.plot(fpr, tpr, linestyle="--", color=colors.get(label.split(" bound")[0]), alpha=0.8, label=label)
    grid = np.logspace(math.log10(low), 0, 50)
    ax.plot(grid, grid, color="black", linewidth=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(low, 1)
    ax.set_ylim(low, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or "Membership inference ROC")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small")
    return figure
