"""Dashboards for the notebooks: ipywidgets controls and one matplotlib figure that redraws in place.

Each dashboard holds its controls, one :class:`matplotlib.figure.Figure` (``.figure``)
and one :class:`ipywidgets.Output` (``.output``). Changing a control calls
:meth:`Dashboard.update`, which clears the figure's axes, draws them again and
replaces the Output's content with a PNG of the figure. The Output therefore
always holds exactly one image, and the Figure is never registered with pyplot,
so nothing stacks up or needs closing.

The update logic needs no browser: a test sets a control's ``value`` and reads
``.figure`` (line data, bar heights, titles) or the dashboard's properties.

Display a dashboard by making it the last expression of a cell::

    explorer = MechanismExplorer()
    explorer
"""

import base64
import dataclasses
import html
import io
import logging
import math
import numbers
import os
import warnings

import ipywidgets as widgets
import numpy as np
import PIL.Image
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from dpkit import audit, mechanisms, plots, privacy
from dpkit._checks import (
    DPKitWarning,
    check_choice,
    check_int,
    check_non_negative,
    check_open_unit,
    check_positive,
    check_unit_interval,
    invalid,
)
from dpkit.store import number

logger = logging.getLogger(__name__)

__all__ = [
    "AccountantCalculator",
    "ClippingExplorer",
    "Dashboard",
    "EpsilonExplorer",
    "MechanismExplorer",
    "NoisyAnswerDemo",
    "PrivacyLevel",
    "ThresholdExplorer",
    "privacy_levels",
    "read_records",
    "train_config_from_record",
]

# Resolution of the PNG shown in the Output: readable on a laptop, small in a saved notebook.
FIGURE_DPI = 80


def _check_real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise invalid(name, "a finite number", value, "Pass a plain number such as 42.")
    return float(value)


class Dashboard:
    """Controls, one Figure and one Output; the base class of every dashboard here.

    Subclasses create their controls, call ``Dashboard.__init__`` with them and
    implement ``_draw()``, which draws on ``self.figure`` from the controls' values.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        The one figure, reused on every update.
    output : ipywidgets.Output
        Shows the figure as a single PNG image.
    widget : ipywidgets.VBox
        The controls above the Output; what the notebook displays.
    """

    def __init__(self, controls, *, figsize, ncols=1, nrows=1, extra=()):
        self.figure = Figure(figsize=figsize, dpi=FIGURE_DPI, layout="constrained")
        self.figure.subplots(nrows, ncols, squeeze=False)
        self.output = widgets.Output()
        self.controls = list(controls)
        self.widget = widgets.VBox([*self.controls, *extra, self.output])
        for control in self.controls:
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def axes(self):
        """The figure's axes, in the order they were created."""
        return self.figure.axes

    def update(self):
        """Draw the figure from the current control values and show it in the Output."""
        for ax in self.figure.axes:
            ax.clear()
        self._draw()
        self._show()

    def _draw(self):
        raise NotImplementedError

    def _show(self):
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
        titles = "; ".join(ax.get_title() for ax in self.figure.axes if ax.get_title())
        # Replacing the whole outputs tuple is one state update, so the view never shows
        # an empty Output or two images between redraws.
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {
                    "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                    "text/plain": f"<Figure: {titles}>",
                },
                "metadata": {},
            },
        )

    def _on_change(self, change):
        # An error in a widget callback would otherwise only reach JupyterLab's log
        # console, so it is logged and shown in place of the figure.
        try:
            self.update()
        except Exception as error:
            logger.exception("%s failed to redraw", type(self).__name__)
            self.output.outputs = (
                {"output_type": "stream", "name": "stderr", "text": f"Redraw failed: {type(error).__name__}: {error}\n"},
            )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ---------------------------------------------------------------------------
# 00: a first slider


class NoisyAnswerDemo(Dashboard):
    """One slider, the noise scale, over a histogram of noisy releases of one answer.

    Each release is the true answer plus Laplace noise of the chosen scale, drawn
    with a fixed seed, so the same scale always gives the same picture.

    Parameters
    ----------
    true_answer : float, default 42
    noise_scale : float, default 2.0
        Initial scale of the Laplace noise, in [0.1, 10].
    releases : int, default 1000
        Number of noisy releases in the histogram.
    seed : int, default 0
    """

    def __init__(self, *, true_answer=42.0, noise_scale=2.0, releases=1000, seed=0):
        self.true_answer = _check_real("true_answer", true_answer)
        noise_scale = check_positive("noise_scale", noise_scale, "Use a scale between 0.1 and 10.")
        self.releases = check_int("releases", releases, "Draw at least 10 releases.", minimum=10)
        self.seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
        self.scale_slider = widgets.FloatSlider(
            value=min(max(noise_scale, 0.1), 10.0),
            min=0.1,
            max=10.0,
            step=0.1,
            description="noise scale",
            continuous_update=False,
        )
        super().__init__([self.scale_slider], figsize=(6.5, 3))

    @property
    def samples(self):
        """The noisy releases at the current noise scale."""
        return mechanisms.laplace(
            self.true_answer, sensitivity=1.0, epsilon=1.0 / self.scale_slider.value, rng=self.seed, size=self.releases
        )

    def _draw(self):
        ax = self.axes[0]
        samples = self.samples
        within = float(np.quantile(np.abs(samples - self.true_answer), 0.9))
        ax.hist(samples, bins=np.linspace(self.true_answer - 40, self.true_answer + 40, 81), color="tab:blue")
        ax.axvline(self.true_answer, color="tab:red", linestyle="--", label=f"true answer {self.true_answer:g}")
        ax.set_xlim(self.true_answer - 40, self.true_answer + 40)
        ax.set_xlabel("released answer")
        ax.set_ylabel("releases")
        ax.set_title(f"noise scale {self.scale_slider.value:.1f}: 90% of releases within +/- {within:.1f}")
        ax.legend(fontsize="small")


# ---------------------------------------------------------------------------
# 01: Laplace and Gaussian mechanisms on a count


class MechanismExplorer(Dashboard):
    """An epsilon slider over the output distributions of a count on two neighbouring datasets.

    The top panel shows the densities of the release when the true count is
    ``count`` (dataset D) and ``count + sensitivity`` (D', one more record). The
    bottom panel shows the privacy loss ``log(p(x | D) / p(x | D'))``: within
    ``+/- epsilon`` everywhere for the Laplace mechanism, beyond it on rare
    outputs for the Gaussian mechanism, whose ``delta`` covers them. The Gaussian
    mechanism uses the analytic calibration of :func:`dpkit.mechanisms.gaussian_sigma`.

    Parameters
    ----------
    count : float, default 42
        True answer on D.
    sensitivity : float, default 1.0
    epsilon : float, default 1.0
        Initial value of the slider, which spans 0.1 to 10 on a log scale.
    mechanism : {"laplace", "gaussian"}, default "laplace"
    delta : float, default 1e-5
        Delta of the Gaussian mechanism.
    window : float, default 30
        Half-width of the x range around the true counts, fixed so that the
        spread of the noise can be compared between epsilons.

    Examples
    --------
    >>> explorer = MechanismExplorer(epsilon=0.5)
    >>> explorer.epsilon_slider.value = 2.0
    >>> round(float(max(abs(explorer.axes[1].lines[-1].get_ydata()))), 6)
    2.0
    """

    def __init__(self, *, count=42.0, sensitivity=1.0, epsilon=1.0, mechanism="laplace", delta=1e-5, window=30.0):
        self.count = _check_real("count", count)
        self.sensitivity = check_positive("sensitivity", sensitivity, "Use 1.0 for a count.")
        epsilon = check_positive("epsilon", epsilon, "Use an epsilon between 0.1 and 10.")
        check_choice("mechanism", mechanism, mechanisms.MECHANISMS)
        self.delta = check_open_unit("delta", delta, "Use a small delta such as 1e-5.")
        self.window = check_positive("window", window, "Use a half-width of a few noise scales, e.g. 30.")
        self.epsilon_slider = widgets.FloatLogSlider(
            value=min(max(epsilon, 0.1), 10.0),
            base=10,
            min=-1,
            max=1,
            step=0.02,
            description="epsilon",
            readout_format=".3g",
            continuous_update=False,
        )
        self.mechanism_buttons = widgets.ToggleButtons(
            options=[("Laplace", "laplace"), ("Gaussian", "gaussian")], value=mechanism, description="mechanism"
        )
        super().__init__([self.epsilon_slider, self.mechanism_buttons], figsize=(7.5, 5.5), nrows=2)

    @property
    def exceed_probability(self):
        """Probability, on D, of a release whose privacy loss exceeds epsilon (0 for Laplace)."""
        if self.mechanism_buttons.value == "laplace":
            return 0.0
        epsilon = self.epsilon_slider.value
        sigma = mechanisms.gaussian_sigma(sensitivity=self.sensitivity, epsilon=epsilon, delta=self.delta, analytic=True)
        # The loss at x is (s^2 - 2 s z) / (2 sigma^2) with z = x - count ~ N(0, sigma^2) on D,
        # so it exceeds epsilon when z < s / 2 - epsilon sigma^2 / s.
        return float(stats.norm.cdf(self.sensitivity / (2 * sigma) - epsilon * sigma / self.sensitivity))

    def _draw(self):
        mechanism = self.mechanism_buttons.value
        epsilon = self.epsilon_slider.value
        delta = self.delta if mechanism == "gaussian" else None
        common = dict(
            mechanism=mechanism, epsilon=epsilon, value=self.count, sensitivity=self.sensitivity,
            delta=delta, window=self.window,
        )
        plots.output_distributions(**common, ax=self.axes[0])
        if mechanism == "gaussian":
            title = f"Privacy loss: above epsilon on {100 * self.exceed_probability:.2g}% of releases on D"
        else:
            title = "Privacy loss: never beyond +/- epsilon"
        plots.privacy_loss(**common, ax=self.axes[1], title=title)


# ---------------------------------------------------------------------------
# 02: a loss threshold and the ROC curve


class ThresholdExplorer(Dashboard):
    """A loss-threshold slider over the loss histograms and the ROC curve of a loss attack.

    The attack calls every example whose loss is at or below the threshold a
    member. The left panel shows the two loss distributions and the threshold,
    the right panel the ROC curve and the point that the threshold reaches.

    Parameters
    ----------
    member_losses, non_member_losses : array_like of float
        Per-example losses (>= 0) of the target's training members and of held-out examples.
    threshold : float, optional
        Initial threshold; defaults to the median loss over all examples.
    """

    def __init__(self, member_losses, non_member_losses, *, threshold=None):
        self.member_losses = _as_losses("member_losses", member_losses)
        self.non_member_losses = _as_losses("non_member_losses", non_member_losses)
        everything = np.concatenate([self.member_losses, self.non_member_losses])
        low = math.floor(math.log10(max(everything.min(), 1e-6)) * 10) / 10
        high = math.ceil(math.log10(max(everything.max(), 1e-6)) * 10) / 10 + 0.1
        if threshold is None:
            threshold = float(np.median(everything))
        threshold = check_non_negative("threshold", threshold, "Use a loss value, e.g. the median loss.")
        self.threshold_slider = widgets.FloatLogSlider(
            value=min(max(threshold, 10**low), 10**high),
            base=10,
            min=low,
            max=high,
            step=0.05,
            description="loss threshold",
            readout_format=".3g",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        labels = np.concatenate([np.ones(len(self.member_losses)), np.zeros(len(self.non_member_losses))])
        self._roc = audit.roc(labels, -everything)
        super().__init__([self.threshold_slider], figsize=(9, 3.6), ncols=2)

    @property
    def tpr(self):
        """Fraction of members called members at the current threshold."""
        return float(np.mean(self.member_losses <= self.threshold_slider.value))

    @property
    def fpr(self):
        """Fraction of non-members wrongly called members at the current threshold."""
        return float(np.mean(self.non_member_losses <= self.threshold_slider.value))

    def _draw(self):
        left, right = self.axes
        threshold = self.threshold_slider.value
        plots.loss_histograms(self.member_losses, self.non_member_losses, threshold=threshold, ax=left)
        fpr, tpr, _ = self._roc
        right.plot(fpr, tpr, label="loss attack")
        right.plot([0, 1], [0, 1], color="black", linewidth=0.8, label="chance")
        right.plot([self.fpr], [self.tpr], "o", color="tab:red", label="this threshold")
        right.set_xlim(0, 1)
        right.set_ylim(0, 1)
        right.set_xlabel("false positive rate")
        right.set_ylabel("true positive rate")
        right.set_title(f"TPR = {self.tpr:.2f} at FPR = {self.fpr:.2f}")
        right.grid(True, alpha=0.3)
        right.legend(fontsize="small", loc="lower right")


def _as_losses(name, values):
    try:
        losses = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise invalid(name, "an array of losses", values, "Pass per-example cross-entropy losses.") from None
    if losses.size == 0 or not np.all(np.isfinite(losses)) or np.any(losses < 0):
        raise invalid(name, "a non-empty array of finite losses >= 0", values, "Pass per-example cross-entropy losses.")
    return losses


# ---------------------------------------------------------------------------
# 03: clipping and noise


def _clip_and_noise(grads, max_grad_norm, noise_multiplier, generator):
    norms = grads.norm(dim=1, keepdim=True)
    clipped = grads * torch.clamp(max_grad_norm / (norms + 1e-6), max=1.0)
    noise = torch.normal(0.0, noise_multiplier * max_grad_norm, size=grads.shape[1:], generator=generator)
    return (clipped.sum(dim=0) + noise) / len(grads), clipped.mean(dim=0)


class ClippingExplorer(Dashboard):
    """Sliders on ``max_grad_norm`` and ``noise_multiplier`` over one batch of per-example gradients.

    The left panel is the histogram of per-example gradient norms with the
    clipping norm and the fraction clipped. The right panel compares the norms of
    the true mean gradient, the mean of the clipped gradients and the noise added
    to the average. The noise bar is the expected noise norm,
    ``noise_multiplier * max_grad_norm * sqrt(num_params) / batch_size``. The title
    gives the cosine between the noisy update and the true mean gradient. Noise is
    drawn with a fixed seed, so the same settings always give the same figure.

    Parameters
    ----------
    per_sample_grads : torch.Tensor or numpy.ndarray of shape (batch_size, num_params)
        One flattened gradient per example.
    max_grad_norm : float, optional
        Initial clipping norm; defaults to the median gradient norm.
    noise_multiplier : float, default 1.0
        Initial noise multiplier, in [0, 5].
    seed : int, default 0
        Seed of the noise.
    """

    def __init__(self, per_sample_grads, *, max_grad_norm=None, noise_multiplier=1.0, seed=0):
        if torch.is_tensor(per_sample_grads):
            grads = per_sample_grads.detach()
        else:
            grads = torch.as_tensor(np.asarray(per_sample_grads, dtype=float))
        if grads.ndim != 2 or len(grads) == 0 or not torch.isfinite(grads).all():
            raise invalid(
                "per_sample_grads",
                "a finite 2-D array of shape (batch_size, num_params) with batch_size >= 1",
                f"shape {tuple(grads.shape)}",
                "Flatten each example's gradient into one row.",
            )

        self.per_sample_grads = grads.detach().double()
        self.norms = self.per_sample_grads.norm(dim=1).numpy()
        self.seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)

        positive = self.norms[self.norms > 0]
        low = math.floor(math.log10(positive.min() / 2) * 10) / 10 if positive.size else -2.0
        high = math.ceil(math.log10(positive.max() * 2) * 10) / 10 if positive.size else 1.0
        if max_grad_norm is None:
            max_grad_norm = float(np.median(positive)) if positive.size else 1.0
        max_grad_norm = check_positive("max_grad_norm", max_grad_norm, "Use a positive clipping norm.")
        noise_multiplier = check_non_negative("noise_multiplier", noise_multiplier, "Use a value in [0, 5].")

        self.max_grad_norm_slider = widgets.FloatLogSlider(
            value=min(max(max_grad_norm, 10**low), 10**high),
            base=10,
            min=low,
            max=high,
            step=0.05,
            description="max_grad_norm",
            readout_format=".3g",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.noise_multiplier_slider = widgets.FloatSlider(
            value=min(noise_multiplier, 5.0),
            min=0.0,
            max=5.0,
            step=0.1,
            description="noise_multiplier",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        super().__init__([self.max_grad_norm_slider, self.noise_multiplier_slider], figsize=(10, 3.6), ncols=2)

    @property
    def fraction_clipped(self):
        """Fraction of examples whose gradient norm exceeds ``max_grad_norm``."""
        return float(np.mean(self.norms > self.max_grad_norm_slider.value))

    def norms_compared(self):
        """Return the L2 norms of the true mean gradient, the clipped mean and the expected noise, and the cosine.

        Returns
        -------
        dict
            ``true``, ``clipped``, ``noise`` (norms) and ``cosine`` (between the noisy
            update and the true mean gradient; NaN when either is zero).
        """
        max_grad_norm = self.max_grad_norm_slider.value
        noise_multiplier = self.noise_multiplier_slider.value
        batch_size, size = self.per_sample_grads.shape
        generator = torch.Generator().manual_seed(self.seed)
        update, clipped_mean = _clip_and_noise(self.per_sample_grads, max_grad_norm, noise_multiplier, generator)
        true_mean = self.per_sample_grads.mean(dim=0)
        denominator = (update.norm() * true_mean.norm()).item()
        cosine = (update @ true_mean).item() / denominator if denominator > 0 else math.nan
        return {
            "true": true_mean.norm().item(),
            "clipped": clipped_mean.norm().item(),
            "noise": noise_multiplier * max_grad_norm * math.sqrt(size) / batch_size,
            "cosine": cosine,
        }

    def _draw(self):
        left, right = self.axes
        plots.gradient_norms(self.norms, max_grad_norm=self.max_grad_norm_slider.value, ax=left)
        compared = self.norms_compared()
        names = ["true mean\ngradient", "mean of clipped\ngradients", "noise in the\naverage (expected)"]
        heights = [compared["true"], compared["clipped"], compared["noise"]]
        right.bar(names, heights, color=["tab:gray", "tab:blue", "tab:orange"])
        right.set_ylabel("L2 norm")
        right.set_title(f"cosine(noisy update, true mean gradient) = {compared['cosine']:.2f}")


# ---------------------------------------------------------------------------
# 04: accountants


_DELTAS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)


class AccountantCalculator(Dashboard):
    """Epsilon of DP-SGD under the RDP, PRV and GDP accountants, from four controls.

    Controls: ``noise_multiplier``, ``sample_rate``, ``steps`` and ``delta``. A table
    (``.table``, an ``ipywidgets.HTML``) gives epsilon after ``steps`` steps under each
    accountant, always with its delta and accountant, and the figure shows epsilon
    over the steps. An accountant that fails for the settings is reported in the
    table and left out of the figure. GDP is a central-limit approximation, not a
    bound, and the table adds a note when it is far from valid (few steps or a large
    sample rate).

    Parameters
    ----------
    noise_multiplier : float, default 1.0
        In [0.3, 5].
    sample_rate : float, default 0.01
        In [1e-4, 1].
    steps : int, default 1000
        In [1, 100,000].
    delta : float, default 1e-5
        One of 1e-3, 1e-4, 1e-5, 1e-6, 1e-7.
    points : int, default 10
        Points per epsilon curve. The PRV accountant takes about 0.1 to 0.2 s per
        point on a laptop CPU, so more points make each redraw slower.
    """

    def __init__(self, *, noise_multiplier=1.0, sample_rate=0.01, steps=1000, delta=1e-5, points=10):
        noise_multiplier = check_positive("noise_multiplier", noise_multiplier, "Use a value in [0.3, 5].")
        sample_rate = check_unit_interval("sample_rate", sample_rate, "Use batch_size / dataset size.")
        steps = check_int("steps", steps, "Use at least 1 step.")
        check_choice("delta", delta, _DELTAS)
        self.points = check_int("points", points, "Use at least 2 points.", minimum=2)
        style = {"description_width": "initial"}
        self.noise_multiplier_slider = widgets.FloatSlider(
            value=min(max(noise_multiplier, 0.3), 5.0), min=0.3, max=5.0, step=0.05,
            description="noise_multiplier", continuous_update=False, style=style,
        )
        self.sample_rate_slider = widgets.FloatLogSlider(
            value=min(max(sample_rate, 1e-4), 1.0), base=10, min=-4, max=0, step=0.05,
            description="sample_rate", readout_format=".3g", continuous_update=False, style=style,
        )
        self.steps_slider = widgets.FloatLogSlider(
            value=min(steps, 100_000), base=10, min=0, max=5, step=0.05,
            description="steps", readout_format=".0f", continuous_update=False, style=style,
        )
        self.delta_dropdown = widgets.Dropdown(
            options=[(f"{value:g}", value) for value in _DELTAS], value=delta, description="delta", style=style
        )
        self.table = widgets.HTML()
        self.epsilons = {}
        super().__init__(
            [self.noise_multiplier_slider, self.sample_rate_slider, self.steps_slider, self.delta_dropdown],
            figsize=(7, 3.8),
            extra=[self.table],
        )

    @property
    def steps(self):
        """The number of steps the slider shows, as an int."""
        return max(1, int(round(self.steps_slider.value)))

    def _settings(self):
        return dict(
            noise_multiplier=self.noise_multiplier_slider.value,
            sample_rate=self.sample_rate_slider.value,
            delta=self.delta_dropdown.value,
        )

    def _draw(self):
        settings = self._settings()
        steps = self.steps
        self.epsilons = privacy.epsilons(**settings, steps=steps)
        curves = {}
        for accountant in privacy.ACCOUNTANTS:
            if isinstance(self.epsilons[accountant], str):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DPKitWarning)
                    curves[accountant] = privacy.epsilon_curve(
                        **settings, steps=steps, accountant=accountant, points=self.points
                    )
            except ValueError as error:
                logger.info("no %s curve for %s: %s", accountant, settings, error)
        ax = self.axes[0]
        plots.epsilon_curves(curves, delta=settings["delta"], ax=ax, title=self._title(settings, steps))
        # epsilon_curves draws one line per curve, in order; mark where each one ends.
        for line, (grid, values) in zip(list(ax.lines), curves.values()):
            ax.plot([grid[-1]], [values[-1]], "o", color=line.get_color())
        self.table.value = self._table_html(settings, steps)

    @staticmethod
    def _title(settings, steps):
        return (
            f"noise_multiplier = {settings['noise_multiplier']:.2f}, sample_rate = {settings['sample_rate']:.3g}, "
            f"steps = {steps}"
        )

    def _table_html(self, settings, steps):
        delta = settings["delta"]
        rows = []
        for accountant in privacy.ACCOUNTANTS:
            value = self.epsilons[accountant]
            label = plots.ACCOUNTANT_LABELS[accountant]
            if isinstance(value, str):
                cell = f"not available: {value}"
            else:
                cell = f"epsilon = {value:.3f} (delta = {delta:g}, {accountant.upper()} accountant)"
            rows.append(f"<tr><td><b>{label}</b></td><td>{cell}</td></tr>")
        note = ""
        if steps < 100 or settings["sample_rate"] > 0.1:
            note = (
                "<p><i>GDP's central-limit approximation needs many steps and a small sample rate; "
                "here it may report too small an epsilon.</i></p>"
            )
        return f"<table>{''.join(rows)}</table>{note}"


# ---------------------------------------------------------------------------
# 05: the privacy-utility trade-off over precomputed sweep results


@dataclasses.dataclass(frozen=True)
class PrivacyLevel:
    """The runs of a sweep at one privacy level, summarised over their seeds.

    Attributes
    ----------
    target_epsilon : float
        The level's target epsilon; ``inf`` for the non-private baseline.
    epsilon : float
        The achieved epsilon (the largest over seeds, which all share it); ``inf``
        for the baseline.
    delta : float or None
        Delta of the guarantee; None for the baseline.
    accountant : str or None
        Accountant of the guarantee; None for the baseline.
    seeds : tuple of int
    accuracy_mean, accuracy_std : float
        Test accuracy over seeds; the standard deviation is 0 for one seed.
    per_class_accuracy : numpy.ndarray of float, shape (num_classes,)
        Test accuracy on each class, averaged over seeds.
    attacks : dict
        Per attack name: ``auc`` and ``tpr_at_1pct_fpr`` averaged over seeds, and
        ``roc``, the ``(fpr, tpr)`` lists stored for the first seed.
    record : dict
        The stored record of the first seed, with the full settings.
    """

    target_epsilon: float
    epsilon: float
    delta: float | None
    accountant: str | None
    seeds: tuple
    accuracy_mean: float
    accuracy_std: float
    per_class_accuracy: np.ndarray
    attacks: dict
    record: dict

    @property
    def private(self):
        """True for a DP-SGD level, False for the non-private baseline."""
        return math.isfinite(self.target_epsilon)

    def describe(self):
        """Return the guarantee in words, epsilon always with its delta and accountant."""
        if not self.private:
            return "non-private baseline: no privacy guarantee (epsilon = inf)"
        return (
            f"target epsilon {self.target_epsilon:g}: epsilon = {self.epsilon:.2f} "
            f"(delta = {self.delta:g}, {self.accountant.upper()} accountant)"
        )


def read_records(source):
    """Return the records of a sweep from a ResultStore, a records file, its folder or a list.

    Parameters
    ----------
    source : dpkit.store.ResultStore, str, path or list of dict
        A store, a ``records.jsonl`` file written by ``dpkit sweep``, the folder
        that contains one, or records already read.

    Returns
    -------
    list of dict
    """
    from dpkit.store import ResultStore

    if isinstance(source, ResultStore):
        return source.records()
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            path = os.path.join(path, "records.jsonl")
        if not os.path.isfile(path):
            raise invalid(
                "records",
                "an existing records.jsonl file or a folder that contains one",
                path,
                "Run `dpkit sweep --out FOLDER` first and pass FOLDER, or pass the file it wrote.",
            )
        return ResultStore(path).records()
    if isinstance(source, (list, tuple)):
        return list(source)
    raise invalid(
        "records",
        "a ResultStore, a path to records.jsonl or a list of records",
        type(source).__name__,
        "Pass e.g. 'data/results/mnist-5k'.",
    )


def _level_key(record):
    target = record["settings"].get("target_epsilon")
    return math.inf if target is None else float(target)


def _check_same(records, field_name, values):
    distinct = sorted({str(value) for value in values})
    if len(distinct) > 1:
        raise invalid(
            f"records' {field_name}",
            "the same in every record of one sweep",
            ", ".join(distinct),
            f"Pass the records of one sweep, e.g. [r for r in records if r['settings']['{field_name}'] == ...].",
        )


def privacy_levels(records):
    """Group a sweep's records by privacy level and summarise each level over its seeds.

    Parameters
    ----------
    records : list of dict, ResultStore or path
        Records written by :func:`dpkit.experiments.run_sweep` (see :func:`read_records`).

    Returns
    -------
    list of PrivacyLevel
        From the most private level to the least, with the non-private baseline last.

    Raises
    ------
    ValueError
        When there are no records, when the records mix datasets, deltas or
        accountants, or when two records share a privacy level and a seed.
    """
    records = [r for r in read_records(records) if isinstance(r, dict) and "settings" in r and "results" in r]
    if not records:
        raise invalid("records", "a non-empty list of sweep records", 0, "Run `dpkit sweep` first.")
    private = [r for r in records if r["settings"].get("target_epsilon") is not None]
    _check_same(records, "dataset", [r["settings"].get("dataset") for r in records])
    _check_same(private, "delta", [r["results"].get("delta") for r in private])
    _check_same(private, "accountant", [r["results"].get("accountant") for r in private])

    groups = {}
    for record in records:
        groups.setdefault(_level_key(record), []).append(record)

    levels = []
    for target in sorted(groups):
        group = sorted(groups[target], key=lambda r: r["settings"]["seed"])
        seeds = tuple(r["settings"]["seed"] for r in group)
        if len(set(seeds)) != len(seeds):
            raise invalid(
                "records",
                "one record per privacy level and seed",
                f"several records with target_epsilon={target} and the same seed",
                "Pass the records of one sweep (one model and one set of training settings).",
            )
        accuracies = np.array([number(r["results"]["test_accuracy"]) for r in group])
        per_class = np.array([[number(v) for v in r["results"]["per_class_accuracy"]] for r in group])
        first = group[0]["results"]
        levels.append(
            PrivacyLevel(
                target_epsilon=target,
                epsilon=max(number(r["results"]["epsilon"]) for r in group),
                delta=first.get("delta"),
                accountant=first.get("accountant"),
                seeds=seeds,
                accuracy_mean=float(accuracies.mean()),
                accuracy_std=float(accuracies.std(ddof=1)) if len(accuracies) > 1 else 0.0,
                per_class_accuracy=per_class.mean(axis=0),
                attacks=_summarise_attacks(group),
                record=group[0],
            )
        )
    return levels


def _summarise_attacks(group):
    names = [name for name in (group[0]["results"].get("attacks") or {})]
    summary = {}
    for name in names:
        runs = [r["results"]["attacks"][name] for r in group if name in (r["results"].get("attacks") or {})]
        roc = runs[0]["roc"]
        summary[name] = {
            "auc": float(np.mean([number(run["auc"]) for run in runs])),
            "tpr_at_1pct_fpr": float(np.mean([number(run["tpr_at_1pct_fpr"]) for run in runs])),
            "roc": ([number(v) for v in roc["fpr"]], [number(v) for v in roc["tpr"]]),
        }
    return summary


def train_config_from_record(record):
    """Rebuild the :class:`~dpkit.training.TrainConfig` of a stored run from its settings."""
    from dpkit.training import TrainConfig

    names = {item.name for item in dataclasses.fields(TrainConfig)}
    settings = record["settings"]
    return TrainConfig(**{name: settings[name] for name in names if name in settings})


def _nearest_level(levels, epsilon):
    targets = [level.target_epsilon for level in levels]
    if math.isinf(epsilon):
        return targets[-1]
    finite = [target for target in targets if math.isfinite(target)]
    return min(finite, key=lambda target: abs(math.log(target) - math.log(epsilon)))


class EpsilonExplorer(Dashboard):
    """An epsilon slider over precomputed sweep results: accuracy, attacks, ROC and per-class accuracy.

    The slider snaps to the privacy levels stored in the records, plus the
    non-private baseline at its right end. One figure shows, for the chosen level:

    1. test accuracy against epsilon (mean and standard deviation over seeds),
       with the chosen level circled and the non-private accuracy dashed;
    2. membership-inference AUC of each stored attack against epsilon;
    3. the ROC curve of one attack at the chosen level (first seed) on log-log
       axes, under the bound that the level's (epsilon, delta) puts on every
       attack (:func:`dpkit.audit.dp_roc_bound`);
    4. accuracy on each class at the chosen level next to the non-private one.

    The figure's title gives the chosen epsilon with its delta and accountant.
    Everything is computed once when the explorer is built. A slider move then
    only moves the highlighted points, replaces the line data and bar heights,
    and renders one PNG.

    With ``live=True`` a "train live" button trains one model at the chosen level
    now, with a progress bar (:meth:`train_live`), and adds it to the accuracy panel.

    Parameters
    ----------
    records : ResultStore, str, path or list of dict
        Sweep records (see :func:`read_records`), e.g. ``"data/results/mnist-5k"``.
    attack : str, optional
        Attack whose ROC curve is shown; defaults to ``"lira"`` when stored, else
        the first stored attack.
    epsilon : float, optional
        Initial level; snapped to the nearest stored target epsilon (``inf`` for
        the baseline). Defaults to 2 when stored, else the middle level.
    live : bool, default True
        Add the "train live" button.
    live_epochs : int, optional
        Epochs of a live run; defaults to the stored run's epochs. Fewer epochs at
        the same target epsilon train faster with less noise per step.
    live_data : dpkit.data.Dataset, optional
        Data of the live runs; defaults to loading the records' dataset and split
        seed on the first live run.
    low : float, default 1e-3
        Smallest rate on the ROC panel's axes, in (0, 1).

    Attributes
    ----------
    slider : ipywidgets.SelectionSlider
        The epsilon slider; its values are target epsilons (``inf`` for the baseline).
    levels : list of PrivacyLevel
    accuracy_point, auc_points, roc_line, bound_line : matplotlib.lines.Line2D
        The artists that follow the slider.
    class_bars : matplotlib.container.BarContainer
        Per-class accuracy of the chosen level.
    live_results : dict of float to TrainResult
        Live runs by target epsilon.

    Examples
    --------
    >>> explorer = EpsilonExplorer("data/results/mnist-5k")  # doctest: +SKIP
    >>> explorer.slider.value = 4.0  # doctest: +SKIP
    >>> explorer.level.describe()  # doctest: +SKIP
    'target epsilon 4: epsilon = 3.99 (delta = 1e-05, RDP accountant)'
    """

    def __init__(self, records, *, attack=None, epsilon=None, live=True, live_epochs=None, live_data=None, low=1e-3):
        self.levels = privacy_levels(records)
        private = [level for level in self.levels if level.private]
        if not private:
            raise invalid(
                "records",
                "records of at least one DP-SGD run",
                "only non-private runs",
                "Run a sweep with target epsilons, e.g. `dpkit sweep --epsilons 1 2 4`.",
            )
        self.private_levels = private
        self.baseline = self.levels[-1] if not self.levels[-1].private else None
        self._by_target = {level.target_epsilon: level for level in self.levels}

        stored = [name for name in private[0].attacks if all(name in level.attacks for level in self.levels)]
        self.attack_names = stored
        if attack is None and "lira" in stored:
            attack = "lira"
        elif attack is None and stored:
            attack = stored[0]
        elif attack is not None and not stored:
            raise invalid("attack", "None, because these records contain no attack results", attack, "Leave attack=None.")
        elif attack is not None:
            check_choice("attack", attack, stored, "Choose an attack stored in every record.")
        self.attack = attack

        self.low = check_open_unit("low", low, "Use a small rate such as 1e-3.")
        self._grid = np.logspace(math.log10(self.low), 0, 120)
        self._bounds = {
            level.target_epsilon: audit.dp_roc_bound(self._grid, epsilon=level.epsilon, delta=level.delta)
            for level in private
        }

        if epsilon is None:
            epsilon = 2.0 if 2.0 in self._by_target else private[len(private) // 2].target_epsilon
        epsilon = check_positive("epsilon", epsilon, "Pass one of the stored target epsilons, or inf.", allow_inf=True)
        if live_epochs is not None:
            live_epochs = check_int("live_epochs", live_epochs, "Train live runs for at least 1 epoch.")
        self.live_epochs = live_epochs
        self._live_data = live_data
        self.live_results = {}

        self.slider = widgets.SelectionSlider(
            options=[(self._option_label(level), level.target_epsilon) for level in self.levels],
            value=_nearest_level(self.levels, epsilon),
            description="target epsilon",
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="480px"),
        )
        self._background = None
        super().__init__([self.slider], figsize=(11, 7.4), nrows=2, ncols=2)

        self.live_status = widgets.HTML()
        self.live_output = widgets.Output()
        self.live_button = None
        if live:
            self.live_button = widgets.Button(
                description="train live",
                tooltip="Train one model at the chosen epsilon now, with the stored settings",
                icon="play",
            )
            self.live_button.on_click(self._on_live_click)
            self.widget.children = (
                self.slider, self.output, widgets.HBox([self.live_button, self.live_status]), self.live_output
            )

    @staticmethod
    def _option_label(level):
        return f"{level.target_epsilon:g}" if level.private else "none (non-private)"

    @property
    def level(self):
        """The :class:`PrivacyLevel` that the slider shows."""
        return self._by_target[self.slider.value]

    @property
    def epsilon(self):
        """The achieved epsilon of the chosen level (``inf`` for the baseline)."""
        return self.level.epsilon

    # ------------------------------------------------------------------
    # drawing

    def update(self):
        """Move the figure to the slider's level and show it.

        The first call draws everything and keeps the parts that never change (axes,
        curves over all levels, legends) as a rendered background. Later calls paste
        that background and draw only the artists that follow the slider on top of
        it, so a slider move costs a few small draws and one PNG encoding
        (``benchmarks/slider_latency.py`` measures it).
        """
        if self._background is None:
            self._draw_static()
            self._draw()
            self._capture_background()
        else:
            self._draw()
        self._show()

    def _dynamic_artists(self):
        artists = [self.accuracy_point, self.auc_points, self.roc_line, self.bound_line, *self.class_bars.patches]
        if self.baseline_line is not None:
            artists.append(self.baseline_line)
        # Live points come after the circle that marks the chosen level, so that they stay visible on it.
        return artists + [self.live_points] + [ax.title for ax in self.axes] + [self._suptitle]

    def _capture_background(self):
        # Animated artists are left out of a full draw; they are switched back afterwards so
        # that figure.savefig() still draws everything.
        dynamic = self._dynamic_artists()
        for artist in dynamic:
            artist.set_animated(True)
        self._canvas.draw()
        # Freeze the positions found by the constrained layout: later titles then cannot
        # shift the axes, which the background would not follow.
        self.figure.set_layout_engine("none")
        self._background = self._canvas.copy_from_bbox(self.figure.bbox)
        for artist in dynamic:
            artist.set_animated(False)

    def _show(self):
        self._canvas.restore_region(self._background)
        for artist in self._dynamic_artists():
            self.figure.draw_artist(artist)
        buffer = io.BytesIO()
        # compress_level 1 encodes faster than the default level 6, for a PNG a few percent larger.
        PIL.Image.fromarray(np.asarray(self._canvas.buffer_rgba())).save(buffer, format="png", compress_level=1)
        self.output.outputs = (
            {
                "output_type": "display_data",
                "data": {
                    "image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                    "text/plain": f"<Figure: {self._suptitle.get_text()}>",
                },
                "metadata": {},
            },
        )

    def _draw_static(self):
        accuracy_ax, auc_ax, roc_ax, class_ax = self.axes
        private = self.private_levels
        x = [level.epsilon for level in private]
        first = private[0]
        epsilon_label = f"epsilon (delta = {first.delta:g}, {first.accountant.upper()} accountant)"

        self._accuracy_curve = accuracy_ax.errorbar(
            x, [level.accuracy_mean for level in private], yerr=[level.accuracy_std for level in private],
            marker="o", capsize=3, label=f"DP-SGD (mean over {len(first.seeds)} seeds)",
        )
        self.baseline_line = None
        if self.baseline is not None:
            self.baseline_line = accuracy_ax.axhline(
                self.baseline.accuracy_mean, color="grey", linestyle="--", label="non-private"
            )
        (self.accuracy_point,) = accuracy_ax.plot(
            [], [], "o", markersize=15, markerfacecolor="none", markeredgecolor="tab:red", markeredgewidth=2.5,
            label="chosen level",
        )
        (self.live_points,) = accuracy_ax.plot([], [], "*", markersize=14, color="tab:purple", label="live run")
        accuracy_ax.set_xscale("log")
        accuracy_ax.set_xlim(min(x) / 1.6, max(x) * 1.6)
        accuracy_ax.set_xlabel(epsilon_label)
        accuracy_ax.set_ylabel("test accuracy")
        accuracy_ax.grid(True, which="both", alpha=0.3)
        self._accuracy_legend()

        for name in self.attack_names:
            color = auc_ax.plot(x, [level.attacks[name]["auc"] for level in private], marker="o", label=name)[0].get_color()
            if self.baseline is not None:
                auc_ax.axhline(self.baseline.attacks[name]["auc"], color=color, linestyle="--", alpha=0.6,
                               label=f"{name}, non-private")
        auc_ax.axhline(0.5, color="black", linewidth=0.8, label="chance")
        (self.auc_points,) = auc_ax.plot(
            [], [], "o", markersize=15, markerfacecolor="none", markeredgecolor="tab:red", markeredgewidth=2.5
        )
        auc_ax.set_xscale("log")
        auc_ax.set_xlim(min(x) / 1.6, max(x) * 1.6)
        auc_ax.set_xlabel(epsilon_label)
        auc_ax.set_ylabel("attack AUC")
        auc_ax.grid(True, which="both", alpha=0.3)
        if self.attack_names:
            values = [level.attacks[name]["auc"] for level in self.levels for name in self.attack_names]
            auc_ax.set_ylim(min(0.45, min(values) - 0.02), max(0.6, max(values) + 0.02))
            auc_ax.legend(fontsize="x-small", loc="upper left")

        roc_ax.plot(self._grid, self._grid, color="black", linewidth=0.8, label="chance")
        roc_label = f"{self.attack} attack, first seed" if self.attack is not None else "no attack stored"
        (self.roc_line,) = roc_ax.plot([], [], color="tab:blue", label=roc_label)
        (self.bound_line,) = roc_ax.plot(
            [], [], linestyle="--", color="tab:red", label="DP bound: no attack can go above"
        )
        roc_ax.set_xscale("log")
        roc_ax.set_yscale("log")
        roc_ax.set_xlim(self.low, 1)
        roc_ax.set_ylim(self.low, 1)
        roc_ax.set_xlabel("false positive rate")
        roc_ax.set_ylabel("true positive rate")
        roc_ax.grid(True, which="both", alpha=0.3)
        roc_ax.legend(fontsize="x-small", loc="lower right")

        classes = np.arange(len(first.per_class_accuracy))
        if self.baseline is not None:
            class_ax.bar(classes - 0.2, self.baseline.per_class_accuracy, width=0.4, color="tab:gray", label="non-private")
        self.class_bars = class_ax.bar(
            classes + 0.2, first.per_class_accuracy, width=0.4, color="tab:blue", label="chosen level"
        )
        class_ax.set_xticks(classes)
        # The headroom above 1 keeps the legend clear of the bars, which are drawn over it.
        class_ax.set_ylim(0, 1.25)
        class_ax.set_yticks(np.linspace(0, 1, 6))
        class_ax.set_xlabel("class")
        class_ax.set_ylabel("test accuracy on the class")
        class_ax.legend(fontsize="x-small", loc="upper center", ncols=2)
        self._suptitle = self.figure.suptitle(" ", fontsize="medium")
        self._canvas = FigureCanvasAgg(self.figure)

    def _accuracy_legend(self):
        handles = [self._accuracy_curve, self.baseline_line, self.accuracy_point]
        if self.live_results:
            handles.append(self.live_points)
        self.axes[0].legend(handles=[h for h in handles if h is not None], fontsize="x-small", loc="lower right")

    def _draw(self):
        accuracy_ax, auc_ax, roc_ax, class_ax = self.axes
        level = self.level
        if level.private:
            self.accuracy_point.set_data([level.epsilon], [level.accuracy_mean])
            self.auc_points.set_data(
                [level.epsilon] * len(self.attack_names), [level.attacks[name]["auc"] for name in self.attack_names]
            )
            self.bound_line.set_data(self._grid, self._bounds[level.target_epsilon])
        else:
            self.accuracy_point.set_data([], [])
            self.auc_points.set_data([], [])
            self.bound_line.set_data([], [])
        if self.baseline_line is not None:
            self.baseline_line.set_linewidth(1.0 if level.private else 3.0)
            self.baseline_line.set_color("grey" if level.private else "tab:red")

        std = f" +/- {level.accuracy_std:.3f}" if len(level.seeds) > 1 else ""
        accuracy_ax.set_title(f"Test accuracy {level.accuracy_mean:.3f}{std}")
        aucs = ", ".join(f"{name} {level.attacks[name]['auc']:.3f}" for name in self.attack_names)
        auc_ax.set_title(f"Attack AUC: {aucs}" if aucs else "No attack results stored")

        if self.attack is not None:
            fpr, tpr = level.attacks[self.attack]["roc"]
            self.roc_line.set_data(fpr, tpr)
            tpr_1 = level.attacks[self.attack]["tpr_at_1pct_fpr"]
            roc_ax.set_title(f"{self.attack} ROC: TPR {tpr_1:.3f} at 1% FPR")
        else:
            roc_ax.set_title("No attack results stored")

        for bar, height in zip(self.class_bars, level.per_class_accuracy):
            bar.set_height(height)
        worst = int(np.nanargmin(level.per_class_accuracy))
        class_ax.set_title(f"Per-class accuracy: worst class {worst} at {level.per_class_accuracy[worst]:.2f}")

        self._suptitle.set_text(f"{level.describe()}, {len(level.seeds)} seed(s)")

    # ------------------------------------------------------------------
    # live mode

    def live_config(self, level=None):
        """Return the TrainConfig of a live run at ``level`` (default: the chosen one)."""
        config = train_config_from_record((level or self.level).record)
        return config if self.live_epochs is None else config.replace(epochs=self.live_epochs)

    def _live_dataset(self, level):
        if self._live_data is None:
            from dpkit.data import load

            settings = level.record["settings"]
            self._live_data = load(settings["dataset"], seed=settings.get("split_seed", 0))
        return self._live_data

    def train_live(self, *, progress=True):
        """Train one model at the chosen level now and add its accuracy to the figure.

        The settings are the stored run's (first seed), with ``live_epochs`` if
        given. Called from a notebook cell, the progress bar appears under that
        cell; after a click on the "train live" button it appears in ``live_output``.

        Returns
        -------
        dpkit.training.TrainResult
        """
        from dpkit.training import train

        level = self.level
        config = self.live_config(level)
        dataset = self._live_dataset(level)
        self.live_status.value = f"<i>training at {html.escape(level.describe())} ...</i>"
        result = train(dataset, config, progress=progress)
        self.live_results[level.target_epsilon] = result

        points = [(r.epsilon, r.test_accuracy) for r in self.live_results.values() if math.isfinite(r.epsilon)]
        self.live_points.set_data([p[0] for p in points], [p[1] for p in points])
        if points:
            # A short live run can land below the stored curve, outside the axis range.
            accuracy_ax = self.axes[0]
            low, high = accuracy_ax.get_ylim()
            accuracies = [p[1] for p in points]
            accuracy_ax.set_ylim(min(low, min(accuracies) - 0.02), max(high, max(accuracies) + 0.02))
        self._accuracy_legend()
        self._capture_background()
        self._show()
        if result.config.private:
            guarantee = f"epsilon = {result.epsilon:.2f} (delta = {result.delta:g}, {result.accountant.upper()} accountant)"
        else:
            guarantee = "no privacy guarantee (non-private)"
        self.live_status.value = html.escape(
            f"live run: test accuracy {result.test_accuracy:.3f} at {guarantee}, {config.epochs} epochs in "
            f"{result.seconds:.0f} s; the stored run ({level.record['settings']['epochs']} epochs) reached "
            f"{number(level.record['results']['test_accuracy']):.3f}."
        )
        return result

    def _on_live_click(self, button):
        button.disabled = True
        self.live_output.clear_output()
        try:
            with self.live_output:
                self.train_live()
        except Exception as error:
            # As for redraws: an error in a widget callback would only reach JupyterLab's log console.
            logger.exception("live training failed")
            self.live_status.value = html.escape(f"Live training failed: {type(error).__name__}: {error}")
        finally:
            button.disabled = False
