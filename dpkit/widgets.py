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
import io
import logging
import math
import numbers
import warnings

import ipywidgets as widgets
import numpy as np
import torch
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

logger = logging.getLogger(__name__)

__all__ = [
    "AccountantCalculator",
    "ClippingExplorer",
    "Dashboard",
    "MechanismExplorer",
    "NoisyAnswerDemo",
    "ThresholdExplorer",
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
