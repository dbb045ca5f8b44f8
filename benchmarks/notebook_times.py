"""Execution time of every notebook in notebooks/, in the fast and (optionally) the full profile.

Each notebook runs in a fresh kernel through nbclient, with the kernel's working
folder set to notebooks/ as under nbval and JupyterLab. Nothing is written back
to the notebooks. The time includes starting the kernel.

Goals: all notebooks together under 10 minutes in the fast profile (CI and
nbval), and every notebook under 10 minutes in the full profile (a classroom).

    python benchmarks/notebook_times.py                # fast profile, all notebooks
    python benchmarks/notebook_times.py --full         # fast and full profiles (long)
    python benchmarks/notebook_times.py --quick        # fast profile, first notebook only

Writes benchmarks/results/notebook_times.md (and .json) and prints the markdown.
"""

import argparse
import datetime
import glob
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

import _machine  # benchmarks/_machine.py: Python puts the script's folder on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")

GOAL_FAST_TOTAL_S = 600
GOAL_FULL_EACH_S = 600
# A cell that runs longer than this fails the notebook; it is well above the goals,
# so that a slow notebook still gets a time.
CELL_TIMEOUT_S = {"fast": 900, "full": 1800}


def _parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def slowest_cell(notebook):
    """Return (index, seconds) of the code cell that ran longest, from nbclient's timing metadata."""
    best = (None, 0.0)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for index, cell in enumerate(code_cells, start=1):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            seconds = (_parse_time(timing["shell.execute_reply"]) - _parse_time(timing["iopub.execute_input"])).total_seconds()
            if seconds > best[1]:
                best = (index, seconds)
    return best


def time_notebook(path, profile):
    """Execute one notebook in a fresh kernel; return its time, status and slowest cell."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S[profile],
        kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOKS}},
    )
    previous = os.environ.get("DPKIT_PROFILE")
    # The kernel inherits this process's environment, so it runs in the requested profile.
    os.environ["DPKIT_PROFILE"] = profile
    started = time.perf_counter()
    status = "ok"
    try:
        client.execute()
    except CellTimeoutError:
        status = f"cell timed out after {CELL_TIMEOUT_S[profile]} s"
    except CellExecutionError as error:
        status = "failed: " + str(error).strip().splitlines()[-1][:120]
    except DeadKernelError:
        status = "failed: the kernel died"
    finally:
        seconds = time.perf_counter() - started
        if previous is None:
            del os.environ["DPKIT_PROFILE"]
        else:
            os.environ["DPKIT_PROFILE"] = previous
    cell, cell_seconds = slowest_cell(notebook)
    return {"notebook": os.path.basename(path), "seconds": seconds, "status": status, "slowest_cell": cell, "slowest_cell_seconds": cell_seconds}


def _time_text(row):
    if row is None:
        return "not run"
    text = f"{row['seconds']:.0f}"
    if row["status"] != "ok":
        text += f" ({row['status']})"
    return text


def _cell_text(row):
    if row is None or row["slowest_cell"] is None:
        return ""
    return f"cell {row['slowest_cell']}: {row['slowest_cell_seconds']:.0f} s"


def report(paths, results, run, arguments):
    """Return the markdown section and the summary rows for RESULTS.md."""
    profiles = [profile for profile in ("fast", "full") if profile in results]
    summary = []
    command = "python benchmarks/notebook_times.py"
    if arguments.full:
        command += " --full"
    if arguments.quick:
        command += " --quick"
    lines = [
        "# Notebook execution times",
        "",
        f"Written by `{command}`.",
        "",
        *run.markdown(),
        "- Each notebook runs in a fresh kernel (nbclient), working folder notebooks/; times include the kernel "
        "start. The slowest code cell is numbered among the code cells, from 1.",
        "",
    ]
    header = ["notebook"]
    for profile in profiles:
        header += [f"{profile} (s)", f"slowest {profile} cell"]
    header.append("goal")
    rows = []
    for path in paths:
        name = os.path.basename(path)
        row = [name]
        for profile in profiles:
            result = results[profile].get(name)
            row += [_time_text(result), _cell_text(result)]
        row.append(f"full < {GOAL_FULL_EACH_S / 60:.0f} min" if "full" in profiles else "")
        rows.append(row)

    if "fast" in results:
        fast = list(results["fast"].values())
        total = sum(row["seconds"] for row in fast)
        n_notebooks = len(glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
        complete = len(fast) == n_notebooks and all(row["status"] == "ok" for row in fast)
        met = total < GOAL_FAST_TOTAL_S if complete else None
        total_row = ["**all, fast profile**", f"**{total:.0f}**", ""]
        total_row += ["", ""] if "full" in profiles else []
        rows.append(total_row + [f"fast total < {GOAL_FAST_TOTAL_S / 60:.0f} min"])
        summary.append(
            {
                "measure": f"all notebooks, fast profile ({len(fast)} of {n_notebooks}{'' if complete else ', not all run or not all ok'})",
                "value": f"{total:.0f} s",
                "goal": f"< {GOAL_FAST_TOTAL_S} s",
                "met": met,
            }
        )
    if "full" in results:
        full = list(results["full"].values())
        slowest = max(full, key=lambda row: row["seconds"])
        all_ok = all(row["status"] == "ok" for row in full)
        summary.append(
            {
                "measure": f"slowest notebook, full profile ({slowest['notebook']})",
                "value": f"{slowest['seconds']:.0f} s",
                "goal": f"every notebook < {GOAL_FULL_EACH_S} s",
                "met": (slowest["seconds"] < GOAL_FULL_EACH_S) if all_ok else False,
            }
        )
    lines += _machine.markdown_table(header, rows, "l" + "rl" * len(profiles) + "l")
    if "full" not in results:
        lines += ["", "The full profile was not run (pass `--full`; it takes long)."]
    return "\n".join(lines), summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="also run every notebook in the full profile (long)")
    parser.add_argument("--quick", action="store_true", help="fast profile, first notebook only: checks the script")
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/*.ipynb)")
    arguments = parser.parse_args(argv)

    paths = [os.path.abspath(path) for path in arguments.notebooks] or sorted(glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
    if arguments.quick and not arguments.notebooks:
        paths = paths[:1]
    if not paths:
        parser.error(f"no notebooks found in {NOTEBOOKS}")
    profiles = ["fast"] + (["full"] if arguments.full else [])

    run = _machine.Run()
    results = {profile: {} for profile in profiles}
    for profile in profiles:
        for path in paths:
            print(f"[{time.strftime('%H:%M:%S')}] {profile}: {os.path.basename(path)}", file=sys.stderr, flush=True)
            results[profile][os.path.basename(path)] = time_notebook(path, profile)
    run.finish()

    markdown, summary = report(paths, results, run, arguments)
    _machine.write_section("notebook_times", markdown, summary, run, extra={"results": results})
    print(markdown)


if __name__ == "__main__":
    main()
