"""Tests for scripts/make_student.py: the student copies lose solutions and outputs, and a
student copy runs up to its first exercise and stops there with a clear message."""

import subprocess
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
SCRIPT = REPO_ROOT / "scripts" / "make_student.py"


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--source", str(NOTEBOOKS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return out


def nbgrader_cells(notebook, kind):
    return [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get(kind)]


def test_copies_every_notebook(student_dir):
    expected = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert expected
    assert sorted(path.name for path in student_dir.glob("*.ipynb")) == expected


def test_copies_have_no_solutions_or_outputs(student_dir):
    for path in sorted(student_dir.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        assert "widgets" not in notebook.metadata, path.name
        for cell in notebook.cells:
            assert "BEGIN SOLUTION" not in cell.source, path.name
            assert "END SOLUTION" not in cell.source, path.name
            if cell.cell_type == "code":
                assert cell.outputs == [], path.name
                assert cell.execution_count is None, path.name


def test_solution_cells_become_stubs(student_dir):
    solutions = 0
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        instructor = nbformat.read(path, as_version=4)
        student = nbformat.read(student_dir / path.name, as_version=4)
        for before, after in zip(nbgrader_cells(instructor, "solution"), nbgrader_cells(student, "solution")):
            solutions += 1
            assert "raise NotImplementedError()" in after.source
            assert after.source.splitlines()[0] == before.source.splitlines()[0]  # the def line stays
            hidden = before.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            # Lines of a few characters, such as a closing bracket, also occur outside solutions.
            for line in (line.strip() for line in hidden.splitlines() if len(line.strip()) > 3):
                assert line not in after.source, f"{path.name}: solution line {line!r} kept"
    assert solutions >= 5


def test_test_cells_locked_and_unchanged(student_dir):
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        instructor = nbformat.read(path, as_version=4)
        student = nbformat.read(student_dir / path.name, as_version=4)
        for before, after in zip(nbgrader_cells(instructor, "grade"), nbgrader_cells(student, "grade")):
            assert after.source == before.source
            assert after.metadata["editable"] is False
            assert after.metadata["deletable"] is False
            assert "checksum" in after.metadata["nbgrader"]


def test_refuses_to_overwrite_instructor_copies():
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(NOTEBOOKS), "--source", str(NOTEBOOKS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "out must differ from source" in completed.stderr


def test_missing_notebook_reported(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--source", str(NOTEBOOKS), "99_missing.ipynb"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "notebook not found" in completed.stderr


def test_student_copy_stops_at_first_exercise(student_dir, monkeypatch):
    monkeypatch.setenv("DPKIT_PROFILE", "fast")
    path = student_dir / "01_what_dp_promises.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(student_dir)}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError) as failure:
        client.execute()

    code_cells = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    failed = [
        index for index in code_cells if any(output.output_type == "error" for output in notebook.cells[index].outputs)
    ]
    assert len(failed) == 1
    failed_cell = notebook.cells[failed[0]]
    first_exercise = next(
        index for index in code_cells if notebook.cells[index].metadata.get("nbgrader", {}).get("grade")
    )
    assert failed[0] == first_exercise
    assert failed_cell.metadata["nbgrader"]["grade_id"] == "check_laplace_mechanism"

    (error,) = [output for output in failed_cell.outputs if output.output_type == "error"]
    assert error.ename == "CheckFailed"
    assert "laplace_mechanism is not implemented yet" in error.evalue
    assert "not implemented yet" in str(failure.value)

    before = [index for index in code_cells if index < failed[0]]
    after = [index for index in code_cells if index > failed[0]]
    assert before and after
    for index in before:
        assert notebook.cells[index].execution_count is not None, f"cell {index} did not run"
    for index in after:
        assert notebook.cells[index].execution_count is None, f"cell {index} ran after the failure"
