"""Tests for the ``dpkit`` command: accounting output, input errors and a tiny sweep."""

import contextlib
import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dpkit.cli import main
from dpkit.privacy import ACCOUNTANTS, epsilon
from dpkit.store import ResultStore, number

EPSILON_ARGS = ["epsilon", "--noise-multiplier", "1.1", "--sample-rate", "0.004", "--epochs", "60", "--delta", "1e-5"]
LINE = re.compile(r"epsilon = (?P<value>[0-9.]+)\s+\(delta = (?P<delta>[0-9.e+-]+), (?P<accountant>\w+) accountant\)")
SWEEP_ARGS = ["sweep", "--dataset", "digits", "--epsilons", "4", "--seeds", "0", "--no-attacks", "--quiet"]


def _epsilon_lines(text):
    return [match.groupdict() for match in map(LINE.search, text.splitlines()) if match]


def _check_epsilon_output(text):
    lines = _epsilon_lines(text)
    assert [line["accountant"] for line in lines] == list(ACCOUNTANTS)
    for line in lines:
        assert float(line["delta"]) == 1e-5
        expected = epsilon(
            noise_multiplier=1.1, sample_rate=0.004, epochs=60, delta=1e-5, accountant=line["accountant"]
        )
        # The command prints 4 decimals.
        assert abs(float(line["value"]) - expected) <= 5e-5, line["accountant"]


def test_epsilon_command(capsys):
    status = main(EPSILON_ARGS)

    assert status == 0
    _check_epsilon_output(capsys.readouterr().out)


def test_epsilon_script():
    script = Path(sys.executable).parent / "dpkit"

    finished = subprocess.run([str(script), *EPSILON_ARGS], capture_output=True, text=True, timeout=300)

    assert finished.returncode == 0, finished.stderr
    _check_epsilon_output(finished.stdout)


def test_epsilon_negative_delta(capsys):
    args = EPSILON_ARGS[:-2] + ["--delta=-1e-5"]

    status = main(args)

    error = capsys.readouterr().err
    assert status == 2
    assert "delta" in error
    assert "-1e-05" in error


def test_epsilon_steps_and_epochs_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(EPSILON_ARGS + ["--steps", "100"])

    assert exit_info.value.code == 2
    assert "--steps" in capsys.readouterr().err


def _run_quietly(args):
    """Run ``main(args)`` in the fast profile; return the status and the printed text."""
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        patch.setenv("DPKIT_PROFILE", "fast")
        status = main(args)
    return status, output.getvalue()


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    status, text = _run_quietly(SWEEP_ARGS + ["--out", str(out)])
    return {"out": out, "status": status, "text": text}


def test_sweep_status(sweep_out):
    assert sweep_out["status"] == 0


@pytest.mark.parametrize("name", ["records.jsonl", "table.csv", "privacy_utility.png"])
def test_sweep_writes_file(sweep_out, name):
    path = sweep_out["out"] / name

    assert path.is_file()
    assert path.stat().st_size > 0


def test_sweep_names_folder_last(sweep_out):
    lines = sweep_out["text"].rstrip().splitlines()
    folder = os.path.abspath(sweep_out["out"])
    heading = max(i for i, line in enumerate(lines) if line.startswith("Outputs written to"))

    assert folder in lines[heading]
    for line in lines[heading + 1 :]:
        assert line.strip().startswith(str(sweep_out["out"])), line


def test_sweep_records(sweep_out):
    records = ResultStore(sweep_out["out"] / "records.jsonl").records()
    targets = [record["settings"]["target_epsilon"] for record in records]

    assert sorted(targets, key=lambda t: t or 0.0) == [None, 4.0]
    for record in records:
        if record["settings"]["target_epsilon"] is not None:
            assert number(record["results"]["epsilon"]) <= 4.0


def test_sweep_no_attacks_flag(sweep_out):
    records = ResultStore(sweep_out["out"] / "records.jsonl").records()

    for record in records:
        assert "attacks" not in record["results"]
    assert not list(sweep_out["out"].glob("bank-*"))


def test_sweep_rerun_trains_nothing(sweep_out, caplog):
    records_path = sweep_out["out"] / "records.jsonl"
    before = records_path.read_bytes()
    caplog.set_level(logging.INFO, logger="dpkit.training")

    status, _ = _run_quietly(SWEEP_ARGS + ["--out", str(sweep_out["out"])])

    assert status == 0
    assert records_path.read_bytes() == before
    messages = [record.getMessage() for record in caplog.records if record.name == "dpkit.training"]
    assert not [text for text in messages if text.startswith("epoch")]


def test_report_command(sweep_out, tmp_path):
    status, text = _run_quietly(["report", str(sweep_out["out"] / "records.jsonl"), "--out", str(tmp_path)])

    assert status == 0
    assert (tmp_path / "table.csv").is_file()
    assert "inf (non-private)" in text


def test_report_empty_records(tmp_path, capsys):
    missing = tmp_path / "none.jsonl"

    status = main(["report", str(missing)])

    assert status == 2
    assert str(missing) in capsys.readouterr().err
