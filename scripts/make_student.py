"""Write student copies of the notebooks, without solutions or outputs.

Each notebook goes through nbgrader's preprocessors in the order of nbgrader's own
``generate_assignment``, without the steps that need nbgrader's database:

1. ``LockCells`` makes test cells read-only and undeletable;
2. ``ClearSolutions`` replaces every ``### BEGIN SOLUTION`` / ``### END SOLUTION``
   region with ``raise NotImplementedError()``;
3. ``ClearOutput`` drops outputs and execution counts;
4. ``CheckCellMetadata`` rejects malformed nbgrader cell metadata (a duplicate
   ``grade_id``, a test cell without points, ...);
5. ``ClearHiddenTests`` and ``ClearMarkScheme`` drop hidden tests and rubrics;
6. ``ComputeChecksums`` records checksums, so that ``nbgrader autograde`` can tell
   whether a locked cell was changed, and ``CheckCellMetadata`` runs once more.

The saved widget state of the instructor copy is dropped too. Notebooks without
exercises only lose their outputs.

Usage::

    python scripts/make_student.py [--out student] [--source notebooks] [NOTEBOOK ...]
"""

import argparse
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ClearSolutions,
    ComputeChecksums,
    LockCells,
)

PREPROCESSORS = (
    LockCells,
    ClearSolutions,
    ClearOutput,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
)

def student_copy(notebook):
    """Return a student copy of an nbformat notebook; the argument is not changed."""
    copy = nbformat.from_dict(notebook)
    resources = {}
    for preprocessor in PREPROCESSORS:
        copy, resources = preprocessor().preprocess(copy, resources)
    copy.metadata.pop("widgets", None)
    nbformat.validate(copy)
    return copy


def make_student(source, out, names=None):
    """Write student copies of the notebooks in ``source`` to ``out``; return the written paths.

    Parameters
    ----------
    source : path
        Folder of the instructor notebooks.
    out : path
        Folder for the student copies, created if missing. Must differ from ``source``,
        so that the instructor copies are never overwritten.
    names : list of str, optional
        File names within ``source``; defaults to every ``*.ipynb`` there.
    """
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise ValueError(
            f"out must differ from source, got {str(out)!r} for both. Writing student copies there would "
            "delete the solutions of the instructor copies; pass another folder, e.g. --out student."
        )
    paths = [source / name for name in names] if names else sorted(source.glob("*.ipynb"))
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"notebook not found: {', '.join(missing)}. Pass file names inside {source}.")
    if not paths:
        raise FileNotFoundError(f"no notebooks (*.ipynb) found in {source}. Pass the folder of the series.")

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        target = out / path.name
        nbformat.write(student_copy(notebook), target)
        written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write student copies of the notebooks, without solutions or outputs.")
    parser.add_argument("--out", default="student", help="folder for the student copies (default: student)")
    parser.add_argument("--source", default="notebooks", help="folder of the instructor notebooks (default: notebooks)")
    parser.add_argument("notebooks", nargs="*", help="file names inside --source (default: all *.ipynb there)")
    args = parser.parse_args(argv)
    try:
        written = make_student(args.source, args.out, args.notebooks)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # nbgrader raises RuntimeError for unbalanced solution markers and bad cell metadata.
        print(f"make_student: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
