"""Run every benchmark and collect the results into benchmarks/RESULTS.md.

`make bench` runs this script. Each benchmark runs as its own process (a script
in this folder that also runs alone) and writes its section to
benchmarks/results/<name>.md. This script then writes RESULTS.md: the date, the
machine and its load, a summary table with every figure next to its goal, and
every section.

    python benchmarks/run_all.py                     # real settings (hours on a laptop)
    python benchmarks/run_all.py --quick             # tiny settings: checks the scripts in minutes
                                                     # (results go to a temporary folder)
    python benchmarks/run_all.py --skip peak_memory  # leave benchmarks out
    python benchmarks/run_all.py --only dp_overhead  # run some, collect the others' last results

With --only or --skip, the sections of benchmarks that did not run are taken
from their last results, marked with the date they were written.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import _machine  # benchmarks/_machine.py: Python puts the script's folder on sys.path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_RESULTS = os.path.join(HERE, "results")

# name, script, arguments for real settings, arguments for --quick, what it measures.
BENCHMARKS = [
    ("dp_overhead", "dp_overhead.py", [], ["--quick"], "DP-SGD epoch over non-private; dpkit's loop over a bare Opacus loop"),
    ("attack_power", "attack_power.py", [], ["--quick"], "attack power against the size of the reference bank"),
    ("slider_latency", "slider_latency.py", [], ["--quick"], "update time of the notebook dashboards"),
    ("notebook_times", "notebook_times.py", ["--full"], ["--quick"], "notebook execution times"),
    ("peak_memory", "peak_memory.py", [], ["--quick"], "peak memory of `make run`'s job"),
]
NAMES = [benchmark[0] for benchmark in BENCHMARKS]


def _accepts(script, flag):
    # Scripts written by others may not take --quick; ask their --help first.
    try:
        help_text = subprocess.run(
            [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
        ).stdout
    except subprocess.TimeoutExpired:
        return False
    return flag in help_text


def run_benchmark(name, script, arguments, results_dir):
    """Run one benchmark script with this interpreter; return its exit status and wall-clock seconds.

    The scripts in this folder write to ``results_dir`` through the variable
    DPKIT_BENCH_RESULTS; a script that takes ``--output`` gets the file name there.
    """
    path = os.path.join(HERE, script)
    arguments = [argument for argument in arguments if argument != "--quick" or _accepts(path, "--quick")]
    if results_dir != DEFAULT_RESULTS and _accepts(path, "--output"):
        arguments += ["--output", os.path.join(results_dir, f"{name}.md")]
    print(f"\n[{time.strftime('%H:%M:%S')}] run_all: {name}: {' '.join([script, *arguments])}", flush=True)
    environment = dict(os.environ, DPKIT_BENCH_RESULTS=results_dir)
    started_at = time.time()
    started = time.perf_counter()
    status = subprocess.run([sys.executable, path, *arguments], cwd=ROOT, env=environment).returncode
    seconds = time.perf_counter() - started
    print(f"[{time.strftime('%H:%M:%S')}] run_all: {name} finished with exit status {status} in {seconds / 60:.1f} min", flush=True)
    return {"status": status, "seconds": seconds, "started_at": started_at, "arguments": arguments}


def _read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def _summary_from_markdown(name, markdown):
    """Summary rows parsed from a section that came without a .json file."""
    if name == "attack_power":
        match = re.search(r"LiRA online with 16: ([0-9.]+|nan); ratio ([0-9.]+|nan) \((met|not met)\)", markdown)
        if match:
            return [
                {
                    "measure": "strongest attack with 4 reference models over LiRA online with 16, TPR at 1% FPR",
                    "value": match.group(2),
                    "goal": ">= 0.8",
                    "met": match.group(3) == "met",
                }
            ]
    # Otherwise, every line that states a goal, as written by the benchmark.
    goals = [line.strip() for line in markdown.splitlines() if re.search(r"\bgoal\b", line, re.IGNORECASE) and not line.startswith("|")]
    return [{"measure": line, "value": "see section", "goal": "", "met": None} for line in goals[:5]]


def _section_folder(name, results_dir, outcome):
    # A script that ignores DPKIT_BENCH_RESULTS and --output writes to the default
    # folder; there its section counts only when it was written while the script ran.
    if os.path.exists(os.path.join(results_dir, f"{name}.md")):
        return results_dir
    default = os.path.join(DEFAULT_RESULTS, f"{name}.md")
    if outcome is not None and os.path.exists(default) and os.path.getmtime(default) >= outcome["started_at"]:
        return DEFAULT_RESULTS
    return None


def collect(name, started, outcome, results_dir):
    """Return the section and summary rows of one benchmark, and a note on where they came from."""
    folder = _section_folder(name, results_dir, outcome)
    if folder is None:
        reason = "its script is missing" if not os.path.exists(os.path.join(HERE, f"{name}.py")) else "no results"
        return None, [], reason
    markdown = _read(os.path.join(folder, f"{name}.md"))
    record = _read(os.path.join(folder, f"{name}.json"))

    written = datetime.datetime.fromtimestamp(os.path.getmtime(os.path.join(folder, f"{name}.md"))).astimezone()
    if outcome is not None and outcome["status"] != 0:
        note = f"failed in this run (exit status {outcome['status']}); the section below is from {written:%Y-%m-%d %H:%M}"
    elif outcome is None or written.timestamp() < started:
        note = f"not run this time; results from {written:%Y-%m-%d %H:%M}"
    else:
        note = f"ran in {outcome['seconds'] / 60:.1f} min"

    summary = None
    if record is not None:
        json_written = os.path.getmtime(os.path.join(folder, f"{name}.json"))
        # A .json from an older run than its .md belongs to other results.
        if json_written >= written.timestamp() - 60:
            summary = json.loads(record).get("summary")
    if summary is None:
        summary = _summary_from_markdown(name, markdown)
    return markdown, summary, note


def demote_headings(markdown):
    """Add one level to every markdown heading outside code blocks."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(lines)


def _verdict(met):
    return {True: "met", False: "**not met**", None: ""}[met]


def write_results(path, run, sections, quick, command):
    lines = [
        "# Benchmark results",
        "",
        f"Written by `{command}`. Each figure below stands next to its goal; the sections after the summary "
        "give the settings, the method and the full tables. benchmarks/README.md describes the benchmarks.",
        "",
    ]
    if quick:
        lines += [
            "**Quick run: tiny settings that only check the scripts. These figures do not measure dpkit; "
            "run `make bench` for real ones.**",
            "",
        ]
    lines += [*run.markdown(), "", "## Summary", ""]
    rows = []
    for name, description, _, summary, note in sections:
        if not summary:
            rows.append([name, description, f"no figures ({note})", "", ""])
        for row in summary:
            rows.append([name, row["measure"], row["value"], row["goal"], _verdict(row["met"])])
    lines += _machine.markdown_table(["benchmark", "measure", "value", "goal", "verdict"], rows)
    lines += ["", "Where each section comes from:", ""]
    lines += [f"- {name}: {note}" for name, _, _, _, note in sections]
    for name, _, markdown, _, _ in sections:
        if markdown:
            lines += ["", demote_headings(markdown.strip())]
    with open(path, "w") as stream:
        stream.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings, to check that the scripts run")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=f"run only these ({', '.join(NAMES)})")
    parser.add_argument("--skip", nargs="+", choices=NAMES, default=[], metavar="NAME", help="leave these out")
    arguments = parser.parse_args(argv)

    selected = [name for name in (arguments.only or NAMES) if name not in arguments.skip]
    if arguments.quick:
        results_dir = tempfile.mkdtemp(prefix="dpkit-bench-quick-")
        results_md = os.path.join(results_dir, "RESULTS.md")
    else:
        results_dir, results_md = DEFAULT_RESULTS, os.path.join(HERE, "RESULTS.md")
    os.makedirs(results_dir, exist_ok=True)
    started = time.time()
    run = _machine.Run()
    outcomes = {}
    for name, script, real, quick, _ in BENCHMARKS:
        if name not in selected:
            continue
        if not os.path.exists(os.path.join(HERE, script)):
            print(f"run_all: {script} is missing; {name} is left out", flush=True)
            continue
        outcomes[name] = run_benchmark(name, script, quick if arguments.quick else real, results_dir)
    run.finish()

    sections = []
    for name, _, _, _, description in BENCHMARKS:
        markdown, summary, note = collect(name, started, outcomes.get(name), results_dir)
        sections.append((name, description, markdown, summary, note))
    command = "python benchmarks/run_all.py" + " ".join([""] + (argv if argv is not None else sys.argv[1:]))
    write_results(results_md, run, sections, arguments.quick, command)
    print(f"\nrun_all: wrote {results_md}")
    failed = [name for name, outcome in outcomes.items() if outcome["status"] != 0]
    if failed:
        print(f"run_all: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
