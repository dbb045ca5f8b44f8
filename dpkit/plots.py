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


# ---------------------------------------------------------------------------
# Figures of the teaching notebooks and their widgets. Each takes ``ax=`` so that a
# dashboard can clear its axes and draw again on the same Figure.


def output_distributions(*, mechanism, epsilon, value, sensitivity=1.0, delta=None, window=None, ax=None, title=None):
    """Plot the release densities of a mechanism on two neighbouring datasets.

    The true answer is ``value`` on dataset D and ``value + sensitivity`` on its
    neighbour D' (one more record). The mechanism is calibrated as in
    :mod:`dpkit.mechanisms`; the Gaussian one uses the analytic calibration, which
    is valid for every epsilon.

    Parameters
    ----------
    mechanism : {"laplace", "gaussian"}
    epsilon : float
        Privacy parameter, > 0.
    value : float
        True answer on D.
    sensitivity : float, default 1.0
    delta : float, optional
        Required for ``"gaussian"``.
    window : float, optional
        Half-width of the x range around ``value``; defaults to 8 noise scales.
    """
    from dpkit import mechanisms

    figure, ax = _figure(figsize=(7, 3), ax=ax)
    scale = _noise_scale(mechanism, epsilon, sensitivity, delta)
    x = _release_grid(value, sensitivity, scale, window)
    peak = 0.0
    for shift, name, style in ((0.0, "D", "-"), (sensitivity, "D'", "--")):
        density = mechanisms.output_density(
            x, mechanism=mechanism, value=value + shift, sensitivity=sensitivity, epsilon=epsilon,
            delta=delta, analytic=True,
        )
        peak = max(peak, float(density.max()))
        ax.plot(x, density, linestyle=style, label=f"on {name}: true answer {value + shift:g}")
    ax.set_xlim(x[0], x[-1])
    # Headroom above the peak keeps the legend clear of the curves.
    ax.set_ylim(0, 1.45 * peak)
    ax.set_xlabel("released answer")
    ax.set_ylabel("density")
    ax.set_title(title or f"{_mechanism_title(mechanism, epsilon, delta)}: output distributions")
    ax.legend(fontsize="small", loc="upper right")
    return figure


def privacy_loss(*, mechanism, epsilon, value, sensitivity=1.0, delta=None, window=None, ax=None, title=None):
    """Plot the privacy loss ``log(p(x | D) / p(x | D'))`` over the released answer x.

    The band between ``-epsilon`` and ``+epsilon`` is shaded. The Laplace loss
    never leaves it; the Gaussian loss does, on outputs whose probability
    ``delta`` accounts for. Arguments are those of :func:`output_distributions`.
    """
    from dpkit import mechanisms

    figure, ax = _figure(figsize=(7, 3), ax=ax)
    scale = _noise_scale(mechanism, epsilon, sensitivity, delta)
    x = _release_grid(value, sensitivity, scale, window)
    ratio = mechanisms.privacy_loss_ratio(
        x, mechanism=mechanism, sensitivity=sensitivity, epsilon=epsilon, delta=delta, analytic=True, value=value
    )
    ax.axhspan(-epsilon, epsilon, color="tab:green", alpha=0.15, label=f"within +/- epsilon = {epsilon:.3g}")
    ax.axhline(epsilon, color="tab:green", linewidth=0.8)
    ax.axhline(-epsilon, color="tab:green", linewidth=0.8)
    ax.plot(x, np.log(ratio), color="black", label="privacy loss")
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(-2 * epsilon, 2 * epsilon)
    ax.set_xlabel("released answer")
    ax.set_ylabel("log p(x|D) / p(x|D')")
    ax.set_title(title or "Privacy loss at each possible output")
    ax.legend(fontsize="small", loc="upper right")
    return figure


def _noise_scale(mechanism, epsilon, sensitivity, delta):
    from dpkit import mechanisms

    if mechanism == "gaussian":
        return mechanisms.gaussian_sigma(sensitivity=sensitivity, epsilon=epsilon, delta=delta, analytic=True)
    return mechanisms.laplace_scale(sensitivity=sensitivity, epsilon=epsilon)


def _release_grid(value, sensitivity, scale, window):
    half_width = window if window is not None else 8 * scale + sensitivity
    return np.linspace(value - half_width, value + sensitivity + half_width, 801)


def _mechanism_title(mechanism, epsilon, delta):
    if mechanism == "gaussian":
        return f"Gaussian mechanism, epsilon = {epsilon:.3g}, delta = {delta:g}"
    return f"Laplace mechanism, epsilon = {epsilon:.3g}"


def randomized_response_estimates(estimates, *, true_rate, ax=None, title=None):
    """Plot the spread of randomized-response estimates for each epsilon.

    Parameters
    ----------
    estimates : dict of float -> array_like
        For each epsilon, the estimated rates of repeated surveys.
    true_rate : float
        The rate in the population, drawn as a horizontal line.
    """
    figure, ax = _figure(figsize=(7, 3.5), ax=ax)
    epsilons = sorted(estimates)
    positions = np.arange(len(epsilons))
    ax.boxplot([np.asarray(estimates[e], float) for e in epsilons], positions=positions, widths=0.5)
    ax.axhline(true_rate, color="tab:red", linestyle="--", label=f"true rate {true_rate:.2f}")
    ax.set_xticks(positions, [f"{e:g}" for e in epsilons])
    ax.set_xlabel("epsilon of each answer")
    ax.set_ylabel("estimated rate")
    ax.set_title(title or "Randomized response: estimates of repeated surveys")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def training_curves(history, *, ax=None, title=None):
    """Plot train and test accuracy per epoch from a :class:`dpkit.training.TrainResult` history."""
    figure, ax = _figure(figsize=(6, 3.5), ax=ax)
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["train_accuracy"] for row in history], marker=".", label="train (members)")
    ax.plot(epochs, [row["test_accuracy"] for row in history], marker=".", label="held out")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title or "Train and held-out accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return figure


def loss_histograms(member_losses, non_member_losses, *, threshold=None, ax=None, title=None, bins=40):
    """Plot histograms of per-example losses of members and non-members on a log scale.

    Losses are clipped below at 1e-6 so that perfectly fitted examples stay on the
    axis. ``threshold``, if given, is drawn as a vertical line: a loss attack calls
    every example left of it a member.
    """
    figure, ax = _figure(figsize=(6.5, 3.5), ax=ax)
    members = np.clip(np.asarray(member_losses, float), 1e-6, None)
    non_members = np.clip(np.asarray(non_member_losses, float), 1e-6, None)
    edges = np.logspace(math.log10(min(members.min(), non_members.min())),
                        math.log10(max(members.max(), non_members.max()) * 1.01), bins + 1)
    ax.hist(members, bins=edges, alpha=0.6, label=f"members ({len(members)})")
    ax.hist(non_members, bins=edges, alpha=0.6, label=f"non-members ({len(non_members)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("cross-entropy loss (log scale)")
    ax.set_ylabel("examples")
    ax.set_title(title or "Per-example loss of members and non-members")
    ax.legend(fontsize="small")
    return figure


def gradient_norms(norms, *, max_grad_norm=None, ax=None, title=None, bins=30):
    """Plot a histogram of per-example gradient norms; bars above ``max_grad_norm`` are drawn in red.

    Returns the Figure; the bars are ``ax.patches`` in bin order.
    """
    figure, ax = _figure(figsize=(6, 3.5), ax=ax)
    norms = np.asarray(norms, float)
    _, edges, patches = ax.hist(norms, bins=bins, color="tab:blue")
    if max_grad_norm is not None:
        for patch, low in zip(patches, edges[:-1]):
            if low >= max_grad_norm:
                patch.set_facecolor("tab:red")
        clipped = float(np.mean(norms > max_grad_norm))
        ax.axvline(max_grad_norm, color="black", linestyle="--", label=f"max_grad_norm = {max_grad_norm:.3g}")
        ax.legend(fontsize="small")
        title = title or f"Per-example gradient norms: {clipped:.0%} clipped"
    ax.set_xlabel("L2 norm of the per-example gradient")
    ax.set_ylabel("examples")
    ax.set_title(title or "Per-example gradient norms")
    return figure


ACCOUNTANT_LABELS = {"rdp": "RDP", "prv": "PRV", "gdp": "GDP (approximation)"}


def epsilon_curves(curves, *, delta, target_epsilon=None, ax=None, title=None):
    """Plot epsilon against the number of steps for each accountant.

    Parameters
    ----------
    curves : dict of accountant -> (steps, epsilons)
        For example ``{"rdp": dpkit.privacy.epsilon_curve(..., accountant="rdp")}``.
    delta : float
        The delta of every curve, shown in the axis label.
    target_epsilon : float, optional
        Drawn as a horizontal line.
    """
    figure, ax = _figure(figsize=(6.5, 3.8), ax=ax)
    for accountant, (steps, values) in curves.items():
        ax.plot(steps, values, label=ACCOUNTANT_LABELS.get(accountant, accountant))
    if target_epsilon is not None:
        ax.axhline(target_epsilon, color="black", linestyle=":", label=f"target epsilon {target_epsilon:g}")
    ax.set_xlabel("steps")
    ax.set_ylabel(f"epsilon (delta = {delta:g})")
    ax.set_title(title or "Privacy spent over training")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figure


# ---------------------------------------------------------------------------
# Figures of notebooks 05 to 07: privacy against utility, audits and a case study.


def _accountant_label(delta, accountant):
    return f"epsilon (delta = {delta:g}, {accountant.upper()} accountant)"


def per_class_accuracy(epsilons, per_class, *, delta, accountant, baseline=None, highlight=(), class_names=None,
                       ax=None, title=None):
    """Plot the test accuracy of every class against epsilon.

    Parameters
    ----------
    epsilons : array_like of float, shape (levels,)
        Achieved epsilons, > 0.
    per_class : array_like of float, shape (levels, classes)
        Accuracy on each class at each level.
    delta : float
        Delta of every epsilon, shown in the axis label with the accountant.
    accountant : str
    baseline : array_like of float, shape (classes,), optional
        Non-private accuracy per class, drawn as one marker per class to the right
        of the curves.
    highlight : sequence of int
        Classes drawn thick and labelled; the others are thin and grey.
    class_names : sequence of str, optional
        Names of the classes in the legend; defaults to their indices.

    Returns
    -------
    matplotlib.figure.Figure
        One line per class, in class order, in ``ax.lines`` (then the baseline markers).
    """
    figure, ax = _figure(figsize=(7, 4), ax=ax)
    epsilons = np.asarray(epsilons, float)
    per_class = np.asarray(per_class, float)
    order = np.argsort(epsilons)
    names = list(class_names) if class_names is not None else [str(k) for k in range(per_class.shape[1])]
    highlight = set(highlight)
    others = [label for label in range(per_class.shape[1]) if label not in highlight]
    for label in range(per_class.shape[1]):
        if label in highlight:
            ax.plot(epsilons[order], per_class[order, label], marker="o", linewidth=2.5, label=f"class {names[label]}")
            continue
        # Only the first grey line gets a legend entry.
        legend_label = "other classes" if label == others[0] else None
        ax.plot(epsilons[order], per_class[order, label], color="tab:gray", linewidth=0.8, alpha=0.6, label=legend_label)
    if baseline is not None:
        x = np.full(per_class.shape[1], epsilons.max() * 2.5)
        ax.plot(x, np.asarray(baseline, float), "_", markersize=14, color="black", label="non-private (right)")
    ax.set_xscale("log")
    ax.set_xlabel(_accountant_label(delta, accountant))
    ax.set_ylabel("test accuracy on the class")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "Who pays for privacy: accuracy per class")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return figure


def accuracy_histories(histories, *, ax=None, title=None):
    """Plot test accuracy per epoch of several runs, for comparing training settings.

    Parameters
    ----------
    histories : dict of str to list of dict
        Label to the ``history`` of a :class:`dpkit.training.TrainResult` (rows
        with ``epoch`` and ``test_accuracy``).
    """
    figure, ax = _figure(figsize=(6.5, 3.8), ax=ax)
    for label, history in histories.items():
        rows = [row for row in history if "test_accuracy" in row]
        ax.plot([row["epoch"] for row in rows], [row["test_accuracy"] for row in rows], marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "Test accuracy over training")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def epsilon_audit(guarantees, lower_bounds, *, delta, accountant, ax=None, title=None):
    """Plot empirical lower bounds on epsilon against the epsilon that the accountant guarantees.

    If the training code and its accountant are correct, a lower bound lands above
    the diagonal (the shaded region) only with the small probability that the
    bound's confidence allows. A lower bound well below the diagonal means a loose
    accountant, a weak attack, or both.

    Parameters
    ----------
    guarantees : array_like of float, shape (runs,)
        The accountant's epsilon of each run (finite).
    lower_bounds : dict of str to array_like of float, shape (runs,)
        Method or attack name to its lower bound for each run.
    delta : float
    accountant : str
    """
    figure, ax = _figure(figsize=(5.5, 4.5), ax=ax)
    guarantees = np.asarray(guarantees, float)
    top = max(float(guarantees.max()), *(float(np.max(v)) for v in lower_bounds.values())) * 1.15
    ax.fill_between([0, top], [0, top], [top, top], color="tab:red", alpha=0.08,
                    label="impossible if the accounting is right")
    ax.plot([0, top], [0, top], color="black", linewidth=0.8, label="lower bound = guarantee")
    for name, values in lower_bounds.items():
        ax.plot(guarantees, np.asarray(values, float), marker="o", linestyle="none", markersize=8, label=name)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(f"guaranteed {_accountant_label(delta, accountant)}")
    ax.set_ylabel("empirical lower bound on epsilon")
    ax.set_title(title or "Audit: what attacks prove against what DP promises")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    return figure
