"""Tests for dpkit.store and dpkit.experiments: records, damage, resuming and tables."""

import json
import math
import platform
import shutil

import opacus
import pytest
import torch

import dpkit
from dpkit._checks import DPKitWarning
from dpkit.experiments import Sweep, results_table, run_sweep
from dpkit.store import ResultStore, number, settings_key
from dpkit.training import TrainConfig

# One baseline and two private runs of one epoch each on digits, without attacks.
SWEEP = Sweep(
    dataset="digits",
    target_epsilons=(2.0, 8.0),
    seeds=(0,),
    private=TrainConfig(model="mlp", epochs=1, batch_size=256, lr=2.0, max_grad_norm=0.1),
    non_private=TrainConfig(model="mlp", epochs=1, batch_size=128, lr=0.1),
    attacks=(),
)
KEYS = [settings_key(SWEEP.settings_of(config)) for config in SWEEP.runs()]

SETTINGS = (
    "dataset",
    "split_seed",
    "model",
    "noise_multiplier_used",
    "max_grad_norm",
    "sample_rate",
    "steps",
    "delta",
    "accountant",
    "seed",
)


class _Recorder:
    """An on_result callback that records run keys and can interrupt the sweep."""

    def __init__(self, interrupt_at=None):
        self.keys = []
        self.interrupt_at = interrupt_at

    def __call__(self, record, result):
        self.keys.append(record["key"])
        if len(self.keys) == self.interrupt_at:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """Run SWEEP, interrupt it during its second run, then run it again to the end."""
    path = tmp_path_factory.mktemp("sweep") / "records.jsonl"
    first = _Recorder(interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(SWEEP, path, progress=False, on_result=first)
    stored_after_interrupt = [record["key"] for record in ResultStore(path).records()]

    second = _Recorder()
    records = run_sweep(SWEEP, path, progress=False, on_result=second)
    return {
        "path": path,
        "first": first.keys,
        "stored_after_interrupt": stored_after_interrupt,
        "second": second.keys,
        "records": records,
    }


def test_store_append_get_contains(tmp_path):
    store = ResultStore(tmp_path / "sub" / "runs.jsonl")
    store.append({"key": "a", "settings": {"seed": 0}, "results": {"accuracy": 0.9}})
    store.append({"key": "b", "settings": {"seed": 1}, "results": {"accuracy": 0.8}})

    assert "a" in store
    assert "c" not in store
    assert len(store) == 2
    assert store.get("b")["results"]["accuracy"] == 0.8
    assert store.get("c") is None


def test_store_reopens_from_file(tmp_path):
    path = tmp_path / "runs.jsonl"
    ResultStore(path).append({"key": "a", "results": {"epsilon": math.inf, "loss": math.nan}})

    record = ResultStore(path).get("a")

    assert number(record["results"]["epsilon"]) == math.inf
    assert math.isnan(number(record["results"]["loss"]))


def test_store_same_key_replaced(tmp_path):
    store = ResultStore(tmp_path / "runs.jsonl")
    store.append({"key": "a", "results": {"accuracy": 0.1}})
    store.append({"key": "a", "results": {"accuracy": 0.2}})

    assert len(ResultStore(store.path)) == 1
    assert ResultStore(store.path).get("a")["results"]["accuracy"] == 0.2


def test_store_missing_key_rejected(tmp_path):
    with pytest.raises(ValueError, match="key"):
        ResultStore(tmp_path / "runs.jsonl").append({"settings": {}})


def test_settings_key_order_free():
    assert settings_key({"a": 1, "b": 2.5}) == settings_key({"b": 2.5, "a": 1})
    assert settings_key({"a": 1}) != settings_key({"a": 2})


def _two_records(path):
    store = ResultStore(path)
    store.append({"key": "a", "results": {"accuracy": 0.9}})
    store.append({"key": "b", "results": {"accuracy": 0.8}})


def test_store_truncated_line_warned(tmp_path):
    path = tmp_path / "runs.jsonl"
    _two_records(path)
    text = path.read_text()
    path.write_text(text[: len(text) - 20])

    with pytest.warns(DPKitWarning, match="line 2"):
        records = ResultStore(path).records()

    assert [record["key"] for record in records] == ["a"]


def test_store_checksum_mismatch_warned(tmp_path):
    path = tmp_path / "runs.jsonl"
    _two_records(path)
    text = path.read_text()
    path.write_text(text.replace("0.8", "0.9"))

    with pytest.warns(DPKitWarning, match="damaged"):
        records = ResultStore(path).records()

    assert [record["key"] for record in records] == ["a"]


def test_sweep_runs_order():
    configs = SWEEP.runs()

    assert [config.target_epsilon for config in configs] == [None, 2.0, 8.0]
    assert not configs[0].private
    assert all(config.private for config in configs[1:])


def test_sweep_interrupt_keeps_finished(resumed):
    assert resumed["first"] == KEYS[:2]
    assert resumed["stored_after_interrupt"] == KEYS[:1]


def test_sweep_resume_trains_unfinished(resumed):
    assert resumed["second"] == KEYS[1:]


def test_sweep_store_complete(resumed):
    store = ResultStore(resumed["path"])

    assert len(store) == 3
    for key in KEYS:
        assert key in store
    assert [record["key"] for record in resumed["records"]] == KEYS


def test_records_carry_settings(resumed):
    for record in resumed["records"]:
        for name in SETTINGS:
            assert name in record["settings"], name
        assert record["settings"]["dataset"] == "digits"
        assert record["settings"]["split_seed"] == 0
        assert record["settings"]["model"] == "mlp"


def test_private_records_complete(resumed):
    for record in resumed["records"][1:]:
        settings = record["settings"]
        assert settings["noise_multiplier_used"] > 0
        assert 0 < settings["sample_rate"] <= 1
        assert settings["steps"] >= 1
        assert settings["delta"] == 1e-5
        assert settings["accountant"] == "rdp"
        assert record["results"]["delta"] == 1e-5
        assert record["results"]["accountant"] == "rdp"


def test_records_carry_versions(resumed):
    expected = {
        "dpkit": dpkit.__version__,
        "torch": torch.__version__,
        "opacus": opacus.__version__,
        "python": platform.python_version(),
    }
    for record in resumed["records"]:
        for name, version in expected.items():
            assert record["versions"][name] == version, name


def test_records_epsilon_within_target(resumed):
    for record in resumed["records"][1:]:
        assert number(record["results"]["epsilon"]) <= record["settings"]["target_epsilon"]


def test_baseline_record_not_private(resumed):
    baseline = resumed["records"][0]

    assert baseline["settings"]["target_epsilon"] is None
    assert number(baseline["results"]["epsilon"]) == math.inf


def test_results_table_one_row_per_level(resumed):
    table = results_table(resumed["records"])

    assert table["target_epsilon"].tolist() == [2.0, 8.0, math.inf]
    assert table["seeds"].tolist() == [1, 1, 1]
    assert "accuracy_mean" in table.columns
    assert "accuracy_std" in table.columns
    baseline = resumed["records"][0]["results"]["test_accuracy"]
    assert table["accuracy_mean"].iloc[-1] == pytest.approx(baseline)


def _record(target, seed, accuracy, epsilon):
    return {
        "settings": {"target_epsilon": target, "seed": seed},
        "results": {
            "epsilon": epsilon,
            "delta": None if target is None else 1e-5,
            "accountant": None if target is None else "rdp",
            "test_accuracy": accuracy,
        },
    }


def test_results_table_mean_and_std():
    records = [
        _record(1.0, 0, 0.6, 0.98),
        _record(1.0, 1, 0.8, 0.99),
        _record(None, 0, 0.9, "inf"),
        _record(None, 1, 0.95, "inf"),
    ]

    table = results_table(records)

    assert len(table) == 2
    assert table["accuracy_mean"].tolist() == pytest.approx([0.7, 0.925])
    # Sample standard deviation over seeds (ddof=1).
    assert table["accuracy_std"].iloc[0] == pytest.approx(math.sqrt(0.02))
    assert table["epsilon"].iloc[0] == pytest.approx(0.99)
    assert table["accountant"].tolist() == ["rdp", "none"]


def test_damaged_record_recomputed(resumed, tmp_path):
    path = tmp_path / "records.jsonl"
    shutil.copy(resumed["path"], path)
    lines = path.read_text().splitlines(keepends=True)
    damaged_key = json.loads(lines[-1])["key"]
    path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    recorder = _Recorder()

    with pytest.warns(DPKitWarning, match="damaged"):
        run_sweep(SWEEP, path, progress=False, on_result=recorder)

    assert recorder.keys == [damaged_key]
    assert len(ResultStore(path)) == 3


def test_complete_store_trains_nothing(resumed, tmp_path):
    path = tmp_path / "records.jsonl"
    shutil.copy(resumed["path"], path)
    before = path.read_bytes()
    recorder = _Recorder()

    records = run_sweep(SWEEP, path, progress=False, on_result=recorder)

    assert recorder.keys == []
    assert path.read_bytes() == before
    assert [record["key"] for record in records] == KEYS
