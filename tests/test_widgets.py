"""Tests for dpkit.widgets without a browser: set a control, then read the figure and the Output."""

import base64
import math

import ipywidgets
import numpy as np
import pytest
import torch

from dpkit import mechanisms, privacy, widgets


def image_count(dashboard):
    return sum("image/png" in output.get("data", {}) for output in dashboard.output.outputs)


def png_of(dashboard):
    (output,) = dashboard.output.outputs
    return base64.b64decode(output["data"]["image/png"])


def artist_counts(figure):
    return [(len(ax.lines), len(ax.patches), len(ax.collections)) for ax in figure.axes]


# ---------------------------------------------------------------------------
# shared behaviour


@pytest.fixture
def gradients():
    generator = torch.Generator().manual_seed(0)
    scales = torch.logspace(-1, 1, 32)[:, None]
    return torch.randn(32, 50, generator=generator) * scales / math.sqrt(50)


@pytest.fixture
def dashboards(gradients):
    rng = np.random.default_rng(0)
    return {
        "demo": (widgets.NoisyAnswerDemo(), "scale_slider", 6.0),
        "mechanism": (widgets.MechanismExplorer(), "epsilon_slider", 3.0),
        "threshold": (
            widgets.ThresholdExplorer(rng.exponential(0.05, 200), rng.exponential(0.5, 200)),
            "threshold_slider",
            0.2,
        ),
        "clipping": (widgets.ClippingExplorer(gradients), "max_grad_norm_slider", 0.3),
        "accountant": (widgets.AccountantCalculator(points=4), "noise_multiplier_slider", 2.0),
    }


def test_dashboards_redraw_in_place(dashboards):
    for name, (dashboard, slider_name, new_value) in dashboards.items():
        figure, axes = dashboard.figure, list(dashboard.figure.axes)
        counts = artist_counts(figure)
        before = png_of(dashboard)
        assert image_count(dashboard) == 1, name

        getattr(dashboard, slider_name).value = new_value

        assert dashboard.figure is figure, name
        assert dashboard.figure.axes == axes, name
        assert artist_counts(figure) == counts, name
        assert len(dashboard.output.outputs) == 1, name
        assert image_count(dashboard) == 1, name
        assert png_of(dashboard) != before, name


def test_dashboard_display_is_widget_box(dashboards):
    for dashboard, slider_name, _ in dashboards.values():
        assert isinstance(dashboard.widget, ipywidgets.VBox)
        assert dashboard.output in dashboard.widget.children
        assert getattr(dashboard, slider_name) in dashboard.widget.children
        bundle = dashboard._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in bundle


def test_failed_redraw_shown_in_output():
    explorer = widgets.MechanismExplorer()
    explorer.delta = 2.0  # invalid, so the next Gaussian redraw raises
    explorer.mechanism_buttons.value = "gaussian"
    (output,) = explorer.output.outputs
    assert output["output_type"] == "stream"
    assert "Redraw failed: ValueError" in output["text"]
    assert "delta" in output["text"]


# ---------------------------------------------------------------------------
# NoisyAnswerDemo


def test_noisy_answer_histogram_counts_releases():
    demo = widgets.NoisyAnswerDemo(true_answer=10, releases=500)
    demo.scale_slider.value = 4.0
    heights = [patch.get_height() for patch in demo.axes[0].patches]
    inside = np.sum(np.abs(demo.samples - 10) <= 40)
    assert sum(heights) == inside
    assert demo.axes[0].lines[0].get_xdata()[0] == 10


def test_noisy_answer_title_reports_spread():
    demo = widgets.NoisyAnswerDemo()
    demo.scale_slider.value = 5.0
    within = np.quantile(np.abs(demo.samples - 42), 0.9)
    assert demo.axes[0].get_title() == f"noise scale 5.0: 90% of releases within +/- {within:.1f}"


def test_noisy_answer_rejects_bad_scale():
    with pytest.raises(ValueError, match="noise_scale must be a positive finite number, got -1"):
        widgets.NoisyAnswerDemo(noise_scale=-1)


# ---------------------------------------------------------------------------
# MechanismExplorer


def test_mechanism_slider_is_epsilon_log_slider():
    explorer = widgets.MechanismExplorer()
    assert isinstance(explorer.epsilon_slider, ipywidgets.FloatLogSlider)
    assert "epsilon" in explorer.epsilon_slider.description


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 2.0, 10.0])
def test_laplace_loss_within_epsilon(epsilon):
    explorer = widgets.MechanismExplorer(epsilon=1.0)
    explorer.epsilon_slider.value = epsilon
    loss = explorer.axes[1].lines[-1].get_ydata()
    assert np.max(np.abs(loss)) == pytest.approx(epsilon, rel=1e-9)
    assert "epsilon = " + f"{epsilon:.3g}" in explorer.axes[0].get_title()


def test_laplace_densities_match_mechanism():
    explorer = widgets.MechanismExplorer(count=42, epsilon=0.5)
    on_d, on_neighbour = explorer.axes[0].lines[:2]
    x = on_d.get_xdata()
    expected = mechanisms.output_density(x, mechanism="laplace", value=42, sensitivity=1.0, epsilon=0.5)
    np.testing.assert_allclose(on_d.get_ydata(), expected)
    assert x[np.argmax(on_d.get_ydata())] == pytest.approx(42, abs=0.1)
    assert x[np.argmax(on_neighbour.get_ydata())] == pytest.approx(43, abs=0.1)


def test_gaussian_loss_exceeds_epsilon():
    explorer = widgets.MechanismExplorer(epsilon=1.0, delta=1e-5)
    explorer.mechanism_buttons.value = "gaussian"
    loss = explorer.axes[1].lines[-1].get_ydata()
    assert np.max(np.abs(loss)) > 1.0
    assert "delta = 1e-05" in explorer.axes[0].get_title()
    assert 0 < explorer.exceed_probability < 1e-3
    assert "of releases on D" in explorer.axes[1].get_title()


def test_gaussian_exceed_probability_matches_sampling():
    explorer = widgets.MechanismExplorer(epsilon=0.5, delta=1e-3, mechanism="gaussian")
    sigma = mechanisms.gaussian_sigma(sensitivity=1.0, epsilon=0.5, delta=1e-3, analytic=True)
    releases = 42 + np.random.default_rng(0).normal(0.0, sigma, 400_000)
    ratio = mechanisms.privacy_loss_ratio(
        releases, mechanism="gaussian", sensitivity=1.0, epsilon=0.5, delta=1e-3, analytic=True, value=42
    )
    assert np.mean(np.log(ratio) > 0.5) == pytest.approx(explorer.exceed_probability, rel=0.1)


def test_mechanism_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match="mechanism must be one of"):
        widgets.MechanismExplorer(mechanism="exponential")
    with pytest.raises(ValueError, match="delta must be in the open interval"):
        widgets.MechanismExplorer(delta=0)
    with pytest.raises(ValueError, match="count must be a finite number"):
        widgets.MechanismExplorer(count=float("nan"))


# ---------------------------------------------------------------------------
# ThresholdExplorer


def test_threshold_point_matches_rates():
    members = np.array([0.01, 0.02, 0.5, 0.03])
    non_members = np.array([0.2, 0.8, 0.04, 1.5])
    explorer = widgets.ThresholdExplorer(members, non_members)
    explorer.threshold_slider.value = 0.1
    assert explorer.tpr == 0.75
    assert explorer.fpr == 0.25
    point = explorer.axes[1].lines[2]
    assert list(point.get_xdata()) == [0.25]
    assert list(point.get_ydata()) == [0.75]
    assert explorer.axes[1].get_title() == "TPR = 0.75 at FPR = 0.25"
    assert explorer.axes[0].lines[0].get_xdata()[0] == pytest.approx(0.1)


def test_threshold_rejects_negative_loss():
    with pytest.raises(ValueError, match="member_losses must be a non-empty array of finite losses >= 0"):
        widgets.ThresholdExplorer([-1.0, 0.2], [0.3])


# ---------------------------------------------------------------------------
# ClippingExplorer


def test_clipping_fraction_in_title(gradients):
    explorer = widgets.ClippingExplorer(gradients)
    norms = gradients.norm(dim=1).numpy()
    explorer.max_grad_norm_slider.value = 0.5
    value = explorer.max_grad_norm_slider.value
    assert explorer.fraction_clipped == pytest.approx(np.mean(norms > value))
    assert f"{np.mean(norms > value):.0%} clipped" in explorer.axes[0].get_title()
    assert explorer.axes[0].lines[0].get_xdata()[0] == pytest.approx(value)
    assert sum(patch.get_height() for patch in explorer.axes[0].patches) == len(norms)


def test_clipping_bars_match_formulas(gradients):
    explorer = widgets.ClippingExplorer(gradients, max_grad_norm=0.5, noise_multiplier=1.0)
    explorer.noise_multiplier_slider.value = 2.0
    value = explorer.max_grad_norm_slider.value
    grads = gradients.double()
    clipped = grads * torch.clamp(value / (grads.norm(dim=1, keepdim=True) + 1e-6), max=1.0)
    heights = [patch.get_height() for patch in explorer.axes[1].patches]
    assert heights[0] == pytest.approx(grads.mean(dim=0).norm().item())
    assert heights[1] == pytest.approx(clipped.mean(dim=0).norm().item())
    assert heights[2] == pytest.approx(2.0 * value * math.sqrt(50) / 32)


def test_clipping_without_noise_points_along_clipped_mean(gradients):
    explorer = widgets.ClippingExplorer(gradients, max_grad_norm=100.0, noise_multiplier=0.0)
    explorer.max_grad_norm_slider.value = 10 ** explorer.max_grad_norm_slider.max
    assert explorer.fraction_clipped == 0.0
    assert explorer.norms_compared()["cosine"] == pytest.approx(1.0)


def test_clipping_same_settings_same_figure(gradients):
    explorer = widgets.ClippingExplorer(gradients, noise_multiplier=1.0)
    first = explorer.norms_compared()
    explorer.noise_multiplier_slider.value = 3.0
    explorer.noise_multiplier_slider.value = 1.0
    assert explorer.norms_compared() == first


def test_clipping_rejects_one_dimensional_input():
    with pytest.raises(ValueError, match=r"per_sample_grads must be a finite 2-D array"):
        widgets.ClippingExplorer(torch.ones(5))


# ---------------------------------------------------------------------------
# AccountantCalculator


def test_accountant_values_match_privacy():
    calculator = widgets.AccountantCalculator(points=3)
    calculator.noise_multiplier_slider.value = 1.5
    calculator.sample_rate_slider.value = 0.02
    calculator.delta_dropdown.value = 1e-6
    steps = calculator.steps
    for accountant in privacy.ACCOUNTANTS:
        expected = privacy.epsilon(
            noise_multiplier=1.5, sample_rate=calculator.sample_rate_slider.value, steps=steps, delta=1e-6,
            accountant=accountant,
        )
        assert calculator.epsilons[accountant] == pytest.approx(expected)


def test_accountant_table_shows_delta_and_accountant():
    calculator = widgets.AccountantCalculator(points=3)
    calculator.delta_dropdown.value = 1e-7
    for accountant in privacy.ACCOUNTANTS:
        value = calculator.epsilons[accountant]
        assert f"epsilon = {value:.3f} (delta = 1e-07, {accountant.upper()} accountant)" in calculator.table.value
    assert "delta = 1e-07" in calculator.axes[0].get_ylabel()


def test_accountant_curves_end_at_values():
    calculator = widgets.AccountantCalculator(points=3, steps=500)
    calculator.steps_slider.value = 2000
    curves = calculator.axes[0].lines[:3]
    assert [line.get_label() for line in curves] == ["RDP", "PRV", "GDP (approximation)"]
    for line, accountant in zip(curves, privacy.ACCOUNTANTS):
        assert line.get_xdata()[-1] == calculator.steps
        assert line.get_ydata()[-1] == pytest.approx(calculator.epsilons[accountant])
        assert np.all(np.diff(line.get_ydata()) >= 0)


def test_accountant_notes_gdp_caveat():
    calculator = widgets.AccountantCalculator(points=3, steps=50)
    assert "approximation needs many steps" in calculator.table.value
    calculator.steps_slider.value = 3000
    assert "approximation needs many steps" not in calculator.table.value


def test_accountant_rejects_bad_input():
    with pytest.raises(ValueError, match="delta must be one of"):
        widgets.AccountantCalculator(delta=0.5)
    with pytest.raises(ValueError, match="sample_rate must be in"):
        widgets.AccountantCalculator(sample_rate=2.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        widgets.AccountantCalculator(steps=0)
