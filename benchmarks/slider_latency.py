"""Update latency of the epsilon explorer: the time from a slider move to a new figure in its Output.

Builds ``dpkit.widgets.EpsilonExplorer`` on stored sweep results (by default
data/results/mnist-5k, the results that notebook 05 reads) and moves its epsilon
slider many times, each time to another stored level drawn at random with a fixed
seed. One move is timed from setting ``slider.value`` until the callback returns:
the artists are updated, the PNG is encoded and the Output's state is replaced.
Sending the PNG to a browser and painting it are not included.

The same moves are then repeated with the two phases timed apart: updating the
artists (``_draw``) and rendering plus encoding the PNG (``_show``).

    python benchmarks/slider_latency.py                      # 50 moves on data/results/mnist-5k
    python benchmarks/slider_latency.py --quick              # 10 moves, to check the script
    python benchmarks/slider_latency.py --records /tmp/dev-results --moves 100

Writes benchmarks/results/slider_latency.md (and .json) and prints the markdown.
"""

import argparse
import base64
import os
import statistics
import sys
import time

import numpy as np

import _machine  # benchmarks/_machine.py: Python puts the script's folder on sys.path
from dpkit.widgets import EpsilonExplorer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RECORDS = os.path.join(ROOT, "data", "results", "mnist-5k")
# Goal: 95% of slider moves redraw within this many milliseconds.
GOAL_MS = 100.0


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", default=DEFAULT_RECORDS, help="records.jsonl or its folder (default: %(default)s)")
    parser.add_argument("--moves", type=int, default=50, help="timed slider moves (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sequence of levels (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="10 moves, to check the script")
    return parser.parse_args()


def level_sequence(values, moves, seed):
    """Return ``moves`` slider values, each different from the one before; the slider starts at ``values[0]``."""
    rng = np.random.default_rng(seed)
    sequence, current = [], values[0]
    for _ in range(moves):
        current = rng.choice([value for value in values if value != current])
        sequence.append(float(current))
    return sequence


def percentile(values, share):
    return float(np.percentile(values, share))


def shown_path(path):
    """Return ``path`` relative to the repository when it lies inside it, else as given."""
    relative = os.path.relpath(os.path.abspath(path), ROOT)
    return path if relative.startswith("..") else relative


def milliseconds(seconds):
    return [1000 * value for value in seconds]


def main():
    arguments = parse_arguments()
    moves = 10 if arguments.quick else arguments.moves
    records = arguments.records
    if not os.path.exists(records):
        sys.exit(
            f"slider_latency: records not found at {records}. Run the main sweep (`make run`, or "
            "`dpkit sweep --out FOLDER`) and pass --records FOLDER."
        )

    run = _machine.Run()
    started = time.perf_counter()
    explorer = EpsilonExplorer(records, live=False)
    build_seconds = time.perf_counter() - started
    values = [value for _, value in explorer.slider.options]
    explorer.slider.value = values[0]

    # Warm-up moves over every level: the first draw of each text and glyph is slower.
    for value in values[1:] + values[:1]:
        explorer.slider.value = value

    sequence = level_sequence(values, moves, arguments.seed)
    totals = []
    for value in sequence:
        started = time.perf_counter()
        explorer.slider.value = value
        totals.append(time.perf_counter() - started)

    draws, shows = [], []
    for value in sequence:
        # Set the value without the callback, then time the two phases of update() apart.
        explorer.slider.unobserve(explorer._on_change, names="value")
        explorer.slider.value = value
        explorer.slider.observe(explorer._on_change, names="value")
        started = time.perf_counter()
        explorer._draw()
        middle = time.perf_counter()
        explorer._show()
        draws.append(middle - started)
        shows.append(time.perf_counter() - middle)
    run.finish()

    png_bytes = len(base64.b64decode(explorer.output.outputs[0]["data"]["image/png"]))
    total_ms, draw_ms, show_ms = milliseconds(totals), milliseconds(draws), milliseconds(shows)
    median, p95 = statistics.median(total_ms), percentile(total_ms, 95)
    width, height = explorer.figure.get_size_inches() * explorer.figure.dpi

    rows = [
        ("slider move, total", statistics.median(total_ms), percentile(total_ms, 95), max(total_ms)),
        ("update the artists (`_draw`)", statistics.median(draw_ms), percentile(draw_ms, 95), max(draw_ms)),
        ("render and encode the PNG (`_show`)", statistics.median(show_ms), percentile(show_ms, 95), max(show_ms)),
    ]
    met = p95 < GOAL_MS
    lines = [
        "## Slider latency of the epsilon explorer",
        "",
        f"`benchmarks/slider_latency.py`: `EpsilonExplorer` on `{shown_path(records)}` "
        f"({len(values)} levels), {moves} timed slider moves to a random other level (seed {arguments.seed}) "
        "after one warm-up move per level. A move is timed from setting `slider.value` until the callback "
        "returns, without the transfer to a browser.",
        "",
        *_machine.markdown_table(
            ["phase", "median (ms)", "95th percentile (ms)", "max (ms)"],
            [(name, f"{a:.1f}", f"{b:.1f}", f"{c:.1f}") for name, a, b, c in rows],
            align="lrrr",
        ),
        "",
        f"- Goal: 95th percentile of a slider move < {GOAL_MS:.0f} ms: **{'met' if met else 'not met'}** "
        f"({p95:.1f} ms).",
        f"- Building the explorer (reading the records and the first full draw): {build_seconds:.2f} s.",
        f"- Figure: {width:.0f} x {height:.0f} pixels, PNG of {png_bytes / 1024:.0f} KiB per update.",
        *run.markdown(),
    ]
    markdown = "\n".join(lines)
    summary = [
        {
            "measure": "epsilon explorer slider move (95th percentile)",
            "value": f"{p95:.1f} ms (median {median:.1f} ms)",
            "goal": f"< {GOAL_MS:.0f} ms",
            "met": met,
        }
    ]
    extra = {
        "records": shown_path(records),
        "moves": moves,
        "total_ms": total_ms,
        "draw_ms": draw_ms,
        "show_ms": show_ms,
        "build_seconds": build_seconds,
        "png_bytes": png_bytes,
    }
    path = _machine.write_section("slider_latency", markdown, summary, run, extra)
    sys.stdout.write(markdown + f"\n\nwritten to {path}\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
