"""Tests for EpsilonExplorer without a browser: move the slider, then read the figure's data and the Output."""

import math
from pathlib import Path

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dpkit import audit, widgets
from dpkit.store import ResultStore, settings_key

RESULTS = Path(__file__).resolve().parents[1] / "data" / "results" / "mnist-5k" / "records.jsonl"


def make_record(target, seed, *, delta=1e-5, accountant="rdp", dataset="digits", attacks=("loss", "lira")):
    """A record shaped like those of dpkit.experiments.run_sweep, with numbers that depend on the level."""
    private = target is not None
    strength = 8.0 if not private else target
    accuracy = 0.95 - 0.3 / (1 + strength) + 0.01 * seed
    fpr = np.concatenate([[0.0], np.logspace(-3, 0, 20)])
    results = {
        "epsilon": target * 0.99 if private else "inf",
        "delta": delta if private else None,
        "accountant": accountant if private else None,
        "test_accuracy": accuracy,
        "train_accuracy": accuracy + 0.02,
        "per_class_accuracy": [accuracy - 0.03 * label / (1 + strength) for label in range(10)],
        "attacks": {},
    }
    for index, name in enumerate(attacks):
        tpr = np.minimum(1.0, fpr * (1 + 0.1 * strength + index + seed))
        results["attacks"][name] = {
            "auc": 0.5 + 0.005 * strength + 0.01 * index,
            "tpr_at_1pct_fpr": 0.01 * (1 + 0.1 * strength),
            "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        }
    settings = {
        "dataset": dataset,
        "split_seed": 0,
        "model": "mlp",
        "epochs": 1,
        "batch_size": 256,
        "lr": 2.0 if private else 0.1,
        "max_grad_norm": 0.1 if private else 1.0,
        "target_epsilon": target,
        "noise_multiplier": None,
        "delta": delta,
        "accountant": accountant,
        "seed": seed,
    }
    return {"key": settings_key(settings), "settings": settings, "results": results}


@pytest.fixture
def records():
    return [make_record(target, seed) for seed in (0, 1) for target in (None, 0.5, 1.0, 2.0, 4.0, 8.0)]


@pytest.fixture
def explorer(records):
    return widgets.EpsilonExplorer(records, live=False)


def image_count(explorer):
    return sum("image/png" in output.get("data", {}) for output in explorer.output.outputs)


def test_slider_snaps_to_stored_levels(explorer):
    assert isinstance(explorer.slider, ipywidgets.SelectionSlider)
    assert "epsilon" in explorer.slider.description
    assert [value for _, value in explorer.slider.options] == [0.5, 1.0, 2.0, 4.0, 8.0, math.inf]
    assert explorer.slider.value == 2.0


def test_initial_epsilon_snaps_to_nearest(records):
    assert widgets.EpsilonExplorer(records, epsilon=3.0, live=False).slider.value == 4.0
    assert widgets.EpsilonExplorer(records, epsilon=0.1, live=False).slider.value == 0.5
    assert widgets.EpsilonExplorer(records, epsilon=math.inf, live=False).slider.value == math.inf


@pytest.mark.parametrize("target", [0.5, 1.0, 4.0, 8.0])
def test_highlight_at_chosen_epsilon(explorer, records, target):
    explorer.slider.value = target
    stored = [r for r in records if r["settings"]["target_epsilon"] == target]
    accuracies = [r["results"]["test_accuracy"] for r in stored]

    assert list(explorer.accuracy_point.get_xdata()) == [target * 0.99]
    assert explorer.epsilon == target * 0.99
    assert explorer.accuracy_point.get_ydata()[0] == pytest.approx(np.mean(accuracies))
    assert list(explorer.auc_points.get_xdata()) == [target * 0.99, target * 0.99]


@pytest.mark.parametrize("target", [0.5, 2.0, 8.0, math.inf])
def test_roc_line_is_stored_roc(explorer, records, target):
    explorer.slider.value = target
    first_seed = next(
        r for r in records if r["settings"]["seed"] == 0 and (r["settings"]["target_epsilon"] or math.inf) == target
    )
    roc = first_seed["results"]["attacks"]["lira"]["roc"]

    assert list(explorer.roc_line.get_xdata()) == roc["fpr"]
    assert list(explorer.roc_line.get_ydata()) == roc["tpr"]


def test_bound_line_is_dp_bound(explorer):
    explorer.slider.value = 4.0
    fpr = explorer.bound_line.get_xdata()
    expected = audit.dp_roc_bound(fpr, epsilon=4.0 * 0.99, delta=1e-5)
    np.testing.assert_allclose(explorer.bound_line.get_ydata(), expected)


def test_class_bars_are_mean_over_seeds(explorer, records):
    explorer.slider.value = 1.0
    stored = [r["results"]["per_class_accuracy"] for r in records if r["settings"]["target_epsilon"] == 1.0]
    heights = [bar.get_height() for bar in explorer.class_bars]
    np.testing.assert_allclose(heights, np.mean(stored, axis=0))


def test_title_gives_delta_and_accountant(explorer):
    for target in (0.5, 2.0, 8.0):
        explorer.slider.value = target
        title = explorer._suptitle.get_text()
        assert f"epsilon = {target * 0.99:.2f}" in title
        assert "delta = 1e-05" in title
        assert "RDP accountant" in title
    assert "delta = 1e-05, RDP accountant" in explorer.axes[0].get_xlabel()


def test_baseline_level_has_no_bound(explorer):
    explorer.slider.value = math.inf
    assert len(explorer.accuracy_point.get_xdata()) == 0
    assert len(explorer.bound_line.get_xdata()) == 0
    assert "non-private" in explorer._suptitle.get_text()
    assert explorer.baseline_line.get_linewidth() == 3.0


def test_redraws_in_place(explorer):
    figures_before = plt.get_fignums()
    figure, axes = explorer.figure, list(explorer.figure.axes)
    counts = [(len(ax.lines), len(ax.patches), len(ax.texts)) for ax in axes]
    images = set()

    for value in [0.5, 1.0, 4.0, 8.0, math.inf, 2.0, 0.5, 8.0, 1.0, 2.0]:
        explorer.slider.value = value
        assert len(explorer.output.outputs) == 1
        assert image_count(explorer) == 1
        images.add(explorer.output.outputs[0]["data"]["image/png"])

    assert plt.get_fignums() == figures_before
    assert explorer.figure is figure
    assert explorer.figure.axes == axes
    assert [(len(ax.lines), len(ax.patches), len(ax.texts)) for ax in axes] == counts
    assert len(images) == 6


def test_image_changes_with_slider(explorer):
    before = explorer.output.outputs[0]["data"]["image/png"]
    explorer.slider.value = 8.0
    after = explorer.output.outputs[0]["data"]["image/png"]
    explorer.slider.value = 2.0
    assert after != before
    assert explorer.output.outputs[0]["data"]["image/png"] == before


def test_savefig_draws_every_artist(explorer):
    explorer.slider.value = 4.0
    assert not any(artist.get_animated() for artist in explorer._dynamic_artists())


def test_reads_store_folder(tmp_path, records):
    store = ResultStore(tmp_path / "records.jsonl")
    for record in records:
        store.append(record)
    from_folder = widgets.EpsilonExplorer(str(tmp_path), live=False)
    from_store = widgets.EpsilonExplorer(store, live=False)
    assert [level.target_epsilon for level in from_folder.levels] == [0.5, 1.0, 2.0, 4.0, 8.0, math.inf]
    assert from_folder.level.accuracy_mean == from_store.level.accuracy_mean


def test_privacy_levels_summarise_seeds(records):
    levels = widgets.privacy_levels(records)
    assert [level.seeds for level in levels] == [(0, 1)] * 6
    assert levels[-1].private is False
    assert levels[-1].epsilon == math.inf
    assert levels[2].accuracy_std == pytest.approx(np.std([r["results"]["test_accuracy"] for r in records[3::6]], ddof=1))
    assert levels[2].describe() == "target epsilon 2: epsilon = 1.98 (delta = 1e-05, RDP accountant)"


def test_train_config_from_record(records):
    config = widgets.train_config_from_record(records[3])
    assert config.target_epsilon == 2.0
    assert config.model == "mlp"
    assert config.lr == 2.0
    assert config.seed == 0


def test_live_run_adds_point(records, digits):
    explorer = widgets.EpsilonExplorer(records, live_data=digits)
    assert explorer.live_button in explorer.widget.children[2].children
    explorer.slider.value = 4.0

    result = explorer.train_live(progress=False)

    assert result.config.target_epsilon == 4.0
    assert result.epsilon <= 4.0
    assert explorer.live_results[4.0] is result
    assert list(explorer.live_points.get_xdata()) == [result.epsilon]
    assert list(explorer.live_points.get_ydata()) == [result.test_accuracy]
    low, high = explorer.axes[0].get_ylim()
    assert low < result.test_accuracy < high
    assert "delta = 1e-05, RDP accountant" in explorer.live_status.value
    assert image_count(explorer) == 1


def test_live_epochs_override(records):
    explorer = widgets.EpsilonExplorer(records, live_epochs=3, live=False)
    assert explorer.live_config().epochs == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"records": []}, "records must be a non-empty list of sweep records"),
        ({"records": "no/such/folder"}, "records must be an existing records.jsonl file"),
        ({"records": 3}, "records must be a ResultStore"),
        ({"records": [make_record(None, 0)]}, "records must be records of at least one DP-SGD run"),
        ({"records": [make_record(1.0, 0), make_record(1.0, 0, dataset="mnist-5k")]}, "records' dataset must be"),
        ({"records": [make_record(1.0, 0), make_record(2.0, 0, delta=1e-6)]}, "records' delta must be"),
        ({"records": [make_record(1.0, 0), make_record(1.0, 0)]}, "one record per privacy level and seed"),
        ({"attack": "rmia"}, "attack must be one of"),
        ({"epsilon": -1.0}, "epsilon must be a positive number"),
        ({"low": 2.0}, "low must be in the open interval"),
        ({"live_epochs": 0}, "live_epochs must be"),
    ],
)
def test_rejects_bad_input(records, arguments, message):
    arguments = {"records": records, **arguments}
    with pytest.raises(ValueError, match=message):
        widgets.EpsilonExplorer(**arguments)


@pytest.mark.skipif(not RESULTS.exists(), reason="data/results/mnist-5k/records.jsonl is not committed yet")
def test_stored_results_explorer():
    explorer = widgets.EpsilonExplorer(RESULTS.parent, live=False)
    for value, _ in zip([v for _, v in explorer.slider.options], range(10)):
        explorer.slider.value = value
        if math.isfinite(value):
            assert explorer.accuracy_point.get_xdata()[0] == explorer.level.epsilon
            assert "delta = " in explorer._suptitle.get_text()
    assert image_count(explorer) == 1


def test_records_without_attacks():
    records = [make_record(target, 0, attacks=()) for target in (None, 1.0, 4.0)]
    explorer = widgets.EpsilonExplorer(records, live=False)
    explorer.slider.value = 4.0
    assert explorer.attack is None
    assert len(explorer.roc_line.get_xdata()) == 0
    assert explorer.axes[1].get_title() == "No attack results stored"


def test_live_point_below_curve_shown(records, digits, monkeypatch):
    from dpkit import training

    explorer = widgets.EpsilonExplorer(records, live_data=digits)
    low_before, _ = explorer.axes[0].get_ylim()
    config = widgets.train_config_from_record(explorer.level.record)
    poor = training.TrainResult(
        model=None, config=config, epsilon=1.98, delta=1e-5, accountant="rdp", test_accuracy=0.1, seconds=1.0
    )
    monkeypatch.setattr(training, "train", lambda *args, **kwargs: poor)

    explorer.train_live(progress=False)

    low, high = explorer.axes[0].get_ylim()
    assert low_before > 0.1
    assert low < 0.1 < high
