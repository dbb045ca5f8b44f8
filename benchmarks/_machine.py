"""Describe the machine a benchmark runs on, and write result files.

Every benchmark records the CPU model, the cores it may use, the memory, the
library versions and the load average at its start and end, because timings mean
little without them. A load average above half the usable cores marks the
machine as shared with other work, and the results record that.
"""

import datetime
import json
import os
import platform

# run_all.py --quick points this elsewhere, so that a check leaves the real results alone.
RESULTS_DIR = os.environ.get("DPKIT_BENCH_RESULTS") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# Above this load per usable core, other processes took a noticeable share of the CPU.
BUSY_LOAD_PER_CORE = 0.5


def cpu_model():
    """CPU model name from /proc/cpuinfo, else what the platform module reports."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores():
    """Cores this process may run on (its CPU affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def cgroup_cpu_limit():
    """CPU limit of the container in cores (cgroup v2 cpu.max), or None when unlimited or unknown."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as stream:
            quota, period = stream.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def memory_gib():
    """Total memory in GiB from /proc/meminfo, or None where that file is missing."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average():
    """Return the 1, 5 and 15 minute load averages, or None where the OS does not report them."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def is_busy(load, cores):
    """True when a 1-minute load average shows other work on the usable cores."""
    return load is not None and cores and load[0] > BUSY_LOAD_PER_CORE * cores


def describe():
    """Return the machine's description as a dict (JSON-serialisable)."""
    import torch

    from dpkit.experiments import library_versions

    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "cgroup_cpu_limit": cgroup_cpu_limit(),
        "memory_gib": memory_gib(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": library_versions(),
    }


class Run:
    """Start and end of one benchmark run: date, machine and load average at both ends."""

    def __init__(self):
        self.started = datetime.datetime.now().astimezone()
        self.load_at_start = load_average()
        self.machine = describe()
        self.load_at_end = None
        self.finished = None

    def finish(self):
        self.load_at_end = load_average()
        self.finished = datetime.datetime.now().astimezone()
        return self

    @property
    def shared(self):
        """True when the load at the start or the end shows other work on the machine."""
        cores = self.machine["cores"]
        return is_busy(self.load_at_start, cores) or is_busy(self.load_at_end, cores)

    def as_dict(self):
        return {
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds") if self.finished else None,
            "load_at_start": self.load_at_start,
            "load_at_end": self.load_at_end,
            "shared": self.shared,
            "machine": self.machine,
        }

    def markdown(self):
        """Markdown bullet lines on the date, the machine and its load."""
        machine = self.machine
        memory = f"{machine['memory_gib']:.1f} GiB" if machine["memory_gib"] else "unknown memory"
        limit = machine["cgroup_cpu_limit"]
        cores = f"{machine['cores']} usable cores of {machine['cpu_count']}"
        if limit is not None:
            cores += f", container limit {limit:g} cores"
        versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
        lines = [
            f"- Date: {self.started:%Y-%m-%d %H:%M %Z}"
            + (f", took {(self.finished - self.started).total_seconds() / 60:.1f} min" if self.finished else ""),
            f"- Machine: {machine['cpu']}, {cores}, {memory}, torch threads {machine['torch_threads']}, {machine['platform']}",
            f"- Versions: {versions}",
            f"- Load average (1, 5, 15 min) at start: {_load_text(self.load_at_start)}; "
            f"at end: {_load_text(self.load_at_end)}",
        ]
        if self.shared:
            lines.append(
                f"- **Shared machine:** the 1-minute load average exceeded {BUSY_LOAD_PER_CORE:g} per usable core, "
                "so other processes competed for the CPU. Timings are distorted, and ratios measured side by side "
                "in one run suffer less than absolute times."
            )
        return lines


def _load_text(load):
    return "unknown" if load is None else ", ".join(f"{value:.2f}" for value in load)


def write_section(name, markdown, summary, run, extra=None):
    """Write ``results/<name>.md`` and ``results/<name>.json``; return the markdown path.

    ``summary`` is a list of dicts with the keys ``measure``, ``value`` (text),
    ``goal`` (text) and ``met`` (True, False or None when there is no goal), which
    run_all.py collects into the table at the top of RESULTS.md.
    """
    os.makedirs(RESULTS_DIR, exist_ok=True)
    markdown_path = os.path.join(RESULTS_DIR, f"{name}.md")
    with open(markdown_path, "w") as stream:
        stream.write(markdown.rstrip("\n") + "\n")
    record = {"name": name, "summary": summary, "run": run.as_dict(), **(extra or {})}
    with open(os.path.join(RESULTS_DIR, f"{name}.json"), "w") as stream:
        json.dump(record, stream, indent=1, default=str)
    return markdown_path


def markdown_table(header, rows, align=None):
    """Return a markdown table; ``align`` contains "l" or "r" per column (default: left)."""
    align = align or "l" * len(header)
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines
