"""Peak resident memory (and wall-clock time) of the main job, `make run`.

Runs `.venv/bin/dpkit sweep` with the main sweep into a temporary output folder,
so outputs/ stays untouched, and reads the job's maximum resident set size from
GNU time (`/usr/bin/time -v`) or, where that is missing, from
`resource.getrusage(RUSAGE_CHILDREN)`. The sweep runs in one process, so its
peak is the job's peak.

    python benchmarks/peak_memory.py            # the full profile: the real job (long)
    python benchmarks/peak_memory.py --fast     # DPKIT_PROFILE=fast
    python benchmarks/peak_memory.py --quick    # fast profile, one epsilon, no attacks: checks the script

Writes benchmarks/results/peak_memory.md (and .json) and prints the markdown.
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import _machine  # benchmarks/_machine.py: Python puts the script's folder on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GNU_TIME = "/usr/bin/time"


def _dpkit_command():
    # The dpkit script next to this interpreter, as `make run` calls it; else the module.
    script = os.path.join(os.path.dirname(sys.executable), "dpkit")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "dpkit.cli"]


def measure(arguments, profile, folder):
    """Run the sweep; return its peak RSS in KiB, wall-clock seconds, exit status and method."""
    sweep_command = _dpkit_command() + ["sweep", "--out", os.path.join(folder, "out"), "--quiet", *arguments]
    command = sweep_command
    environment = dict(os.environ, DPKIT_PROFILE=profile)
    log_path = os.path.join(folder, "sweep.log")
    stats_path = os.path.join(folder, "time.txt")
    use_gnu_time = os.access(GNU_TIME, os.X_OK)
    if use_gnu_time:
        command = [GNU_TIME, "-v", "-o", stats_path] + sweep_command

    started = time.perf_counter()
    with open(log_path, "w") as log:
        status = subprocess.run(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started

    if use_gnu_time:
        with open(stats_path) as stream:
            match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stream.read())
        peak_kib, method = (int(match.group(1)) if match else None), "GNU time -v"
    else:
        # On Linux ru_maxrss is in KiB: the largest resident set of any waited-for child.
        peak_kib, method = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "getrusage(RUSAGE_CHILDREN)"
    with open(log_path) as stream:
        log_tail = stream.read()[-3000:]
    parts = [os.path.relpath(part, ROOT) if part.startswith(ROOT) else part for part in sweep_command]
    display_command = " ".join(part.replace(folder, "TEMPORARY_FOLDER") for part in parts)
    return {
        "peak_kib": peak_kib,
        "seconds": seconds,
        "status": status,
        "method": method,
        "command": display_command,
        "log_tail": log_tail,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fast", action="store_true", help="run the sweep with DPKIT_PROFILE=fast")
    group.add_argument("--quick", action="store_true", help="fast profile, one epsilon, no attacks: checks the script")
    arguments = parser.parse_args(argv)

    if arguments.quick:
        profile, sweep_arguments, label = "fast", ["--epsilons", "1", "--no-attacks"], "fast profile, epsilon 1 only, no attacks (not the real job)"
    elif arguments.fast:
        profile, sweep_arguments, label = "fast", [], "fast profile (DPKIT_PROFILE=fast)"
    else:
        profile, sweep_arguments, label = "full", [], "full profile, the job of `make run`"

    run = _machine.Run()
    print(f"[{time.strftime('%H:%M:%S')}] dpkit sweep, {label} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="dpkit-peak-memory-") as folder:
        result = measure(sweep_arguments, profile, folder)
    run.finish()

    ok = result["status"] == 0 and result["peak_kib"] is not None
    peak = f"{result['peak_kib'] / 1024:.0f} MiB" if result["peak_kib"] is not None else "unknown"
    flag = ""
    if arguments.quick:
        flag = " --quick"
    elif arguments.fast:
        flag = " --fast"
    lines = [
        "# Peak memory of the main job",
        "",
        f"Written by `python benchmarks/peak_memory.py{flag}`.",
        "",
        *run.markdown(),
        f"- Job: `dpkit sweep` with the main sweep, {label}, into a temporary output folder.",
        f"- Command: `DPKIT_PROFILE={profile} {result['command']}` (run from the repository root).",
        f"- Measured with {result['method']} (maximum resident set size of the job's process).",
        "",
        *_machine.markdown_table(
            ["job", "peak resident memory", "wall-clock time", "exit status"],
            [[label, peak, f"{result['seconds'] / 60:.1f} min", result["status"]]],
            "lrrr",
        ),
    ]
    if not ok:
        lines += ["", "The job failed; the end of its output:", "", "```", result["log_tail"].rstrip(), "```"]
    summary = [
        {
            "measure": f"peak resident memory, dpkit sweep, {label}",
            "value": peak if ok else f"{peak} (job failed, exit status {result['status']})",
            "goal": "",
            "met": None if ok else False,
        },
        {"measure": f"wall-clock time, dpkit sweep, {label}", "value": f"{result['seconds'] / 60:.1f} min", "goal": "", "met": None},
    ]
    markdown = "\n".join(lines)
    _machine.write_section("peak_memory", markdown, summary, run, extra={"result": {k: v for k, v in result.items() if k != "log_tail"}})
    print(markdown)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
