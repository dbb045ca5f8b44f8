"""DP-SGD overhead: private over non-private epochs, and dpkit's loop over a bare Opacus loop.

Measures, side by side in one run, for the default CNN on mnist-5k at the main
sweep's DP settings (``dpkit.experiments.main_sweep()``: logical batch 1000,
max_grad_norm 0.1, SGD with momentum) and at batch 256:

1. the time of a DP-SGD training pass over one epoch against a non-private pass
   with the same batch size, for each of Opacus's grad-sample modes (hooks,
   functorch, ghost), both in a bare loop written below;
2. the epoch time of ``dpkit.training.train`` against that bare loop doing the
   same work (same model, optimizer, ``PrivacyEngine.make_private`` with Poisson
   sampling, ``BatchMemoryManager``, number of epochs, and the evaluation of
   train and test accuracy and epsilon after every epoch that dpkit does);
3. where the time of a bare epoch goes (fetching batches, training, evaluation,
   accounting) and what a larger physical batch saves;
4. whether the three modes give the same clipped, noised update: one step from
   the same weights on the same batch, with the same noise generator seed, and
   a slow per-example loop as reference.

Every variant trains a fresh model for a few epochs; the first epoch of each run
is a warm-up and is not counted. The variants are interleaved in each repetition,
so that a change in the machine's load affects all of them alike, and each figure
is a median.

    python benchmarks/dp_overhead.py            # mnist-5k, batches 1000 and 256
    python benchmarks/dp_overhead.py --quick    # digits, one repetition, to check the script
    python benchmarks/dp_overhead.py --threads 1    # on a machine shared with other work

Writes benchmarks/results/dp_overhead.md (and .json) and prints the markdown.
"""

import argparse
import contextlib
import copy
import logging
import math
import statistics
import sys
import time
import warnings

import torch
from opacus import PrivacyEngine
from opacus.utils.batch_memory_manager import BatchMemoryManager
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import _machine  # benchmarks/_machine.py: Python puts the script's folder on sys.path
from dpkit.data import load
from dpkit.experiments import main_sweep
from dpkit.models import make_model
from dpkit.training import GRAD_SAMPLE_MODES, train

# Goals: a DP-SGD epoch costs at most 1.5 non-private epochs, and dpkit's loop at
# most 5% more than a bare Opacus loop doing the same work.
GOAL_DP_OVER_NON_DP = 1.5
GOAL_DPKIT_OVER_BARE = 1.05
# Parameters after one step count as the same update within this absolute difference.
UPDATE_TOLERANCE = 1e-6
# Noise multiplier of the timed runs; the time of a step does not depend on it.
NOISE_MULTIPLIER = 1.0

SETUPS = {
    "full": {"dataset": "mnist-5k", "batch_sizes": (1000, 256), "epochs": 3, "repetitions": 5},
    "quick": {"dataset": "digits", "batch_sizes": (256,), "epochs": 2, "repetitions": 1},
}


def sweep_settings():
    """The main sweep's DP and non-private training settings."""
    sweep = main_sweep()
    return sweep.private, sweep.non_private, sweep.delta


# ---------------------------------------------------------------------------
# the bare Opacus loop


@torch.no_grad()
def bare_evaluate(model, X, y, batch_size=1024):
    """Cross-entropy loss and accuracy in eval mode, in batches of 1024 like dpkit's evaluate."""
    model.eval()
    logits = torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train()
    loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy


def bare_run(data, *, batch_size, lr, momentum, epochs, mode, max_grad_norm, max_physical_batch_size, delta, seed=0):
    """Train like dpkit.training.train does, written out with Opacus alone.

    ``mode=None`` trains without DP. Returns the time at the end of every epoch,
    the time of each phase per epoch and the time of the whole run, as wall-clock
    time and as this process's CPU time.
    """
    X, y, X_test, y_test, num_classes = data
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = make_model("cnn", input_shape=tuple(X.shape[1:]), num_classes=num_classes, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)

    engine = None
    train_model = model
    if mode is not None:
        engine = PrivacyEngine(accountant="rdp")
        wrapped = engine.make_private(
            module=model,
            optimizer=optimizer,
            criterion=criterion,
            data_loader=loader,
            noise_multiplier=NOISE_MULTIPLIER,
            max_grad_norm=max_grad_norm,
            poisson_sampling=True,
            grad_sample_mode=mode,
        )
        if mode == "ghost":
            train_model, optimizer, criterion, loader = wrapped
        else:
            train_model, optimizer, loader = wrapped

    epoch_ends, cpu_ends, phases, pass_cpu = [], [], [], []
    for _ in range(epochs):
        phase = {"fetch": 0.0, "train": 0.0}
        cpu_started = time.process_time()
        train_model.train()
        if engine is not None:
            batches = BatchMemoryManager(
                data_loader=loader, max_physical_batch_size=max_physical_batch_size, optimizer=optimizer
            )
        else:
            batches = contextlib.nullcontext(loader)
        total, count = 0.0, 0
        with batches as iterable:
            iterator = iter(iterable)
            while True:
                fetch_started = time.perf_counter()
                try:
                    features, labels = next(iterator)
                except StopIteration:
                    break
                train_started = time.perf_counter()
                phase["fetch"] += train_started - fetch_started

                optimizer.zero_grad(set_to_none=True)
                if len(labels) == 0:
                    # An empty Poisson batch still takes a (pure noise) step, as in dpkit.
                    output = train_model(features)
                    loss = criterion(output, labels) if mode == "ghost" else output.sum() * 0.0
                else:
                    loss = criterion(train_model(features), labels)
                loss.backward()
                optimizer.step()
                if len(labels):
                    total += loss.item() * len(labels)
                    count += len(labels)
                phase["train"] += time.perf_counter() - train_started

        pass_cpu.append(time.process_time() - cpu_started)

        # The evaluation dpkit does after every epoch: train and test accuracy, and epsilon.
        moment = time.perf_counter()
        bare_evaluate(model, X, y)
        phase["evaluate train"] = time.perf_counter() - moment
        moment = time.perf_counter()
        bare_evaluate(model, X_test, y_test)
        phase["evaluate test"] = time.perf_counter() - moment
        moment = time.perf_counter()
        if engine is not None:
            engine.get_epsilon(delta)
        phase["epsilon"] = time.perf_counter() - moment

        phases.append(phase)
        epoch_ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
    return {
        "epoch_ends": epoch_ends,
        "cpu_ends": cpu_ends,
        "phases": phases,
        "pass_cpu": pass_cpu,
        "seconds": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------
# dpkit's loop


class _EpochClock(logging.Handler):
    """Records the time of every ``epoch N:`` log line that dpkit.training writes after an epoch."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.times = []
        self.cpu_times = []

    def emit(self, record):
        if record.msg.startswith("epoch "):
            self.times.append(time.perf_counter())
            self.cpu_times.append(time.process_time())


def dpkit_run(data, *, config, epochs):
    """Train with dpkit.training.train; return the times at the end of every epoch and of the run."""
    X, y, X_test, y_test, _ = data
    config = config.replace(epochs=epochs)
    clock = _EpochClock()
    training_logger = logging.getLogger("dpkit.training")
    training_logger.addHandler(clock)
    training_logger.setLevel(logging.INFO)
    training_logger.propagate = False
    try:
        started = time.perf_counter()
        train((X, y), config, test=(X_test, y_test), progress=False)
        seconds = time.perf_counter() - started
    finally:
        training_logger.removeHandler(clock)
    return {"epoch_ends": clock.times, "cpu_ends": clock.cpu_times, "seconds": seconds}


# ---------------------------------------------------------------------------
# the identical-update check


def _one_step(model, batch, mode, *, max_grad_norm, noise_multiplier, noise_seed):
    X, y = batch
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0)
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(X, y), batch_size=len(X))
    wrapped = PrivacyEngine(accountant="rdp").make_private(
        module=model,
        optimizer=optimizer,
        criterion=criterion,
        data_loader=loader,
        noise_multiplier=noise_multiplier,
        max_grad_norm=max_grad_norm,
        poisson_sampling=False,
        noise_generator=torch.Generator().manual_seed(noise_seed),
        grad_sample_mode=mode,
    )
    if mode == "ghost":
        train_model, optimizer, criterion, _ = wrapped
    else:
        train_model, optimizer, _ = wrapped
    train_model.train()
    optimizer.zero_grad(set_to_none=True)
    criterion(train_model(X), y).backward()
    optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _reference_step(model, batch, *, max_grad_norm, noise_multiplier, noise_seed):
    # Per-example gradients come from a plain loop and are clipped with Opacus's
    # factor min(1, C / (norm + 1e-6)) and summed. The noise is drawn as Opacus 1.6
    # draws it: torch.normal per parameter, in parameter order, from the generator.
    # The noised sum is averaged over the batch and applied by SGD with lr 1.
    X, y = batch
    parameters = list(model.parameters())
    clipped_sum = [torch.zeros_like(p) for p in parameters]
    for i in range(len(X)):
        model.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(X[i : i + 1]), y[i : i + 1]).backward()
        gradients = [p.grad.detach() for p in parameters]
        norm = torch.sqrt(sum((g**2).sum() for g in gradients))
        factor = torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0)
        for total, gradient in zip(clipped_sum, gradients):
            total += factor * gradient
    generator = torch.Generator().manual_seed(noise_seed)
    with torch.no_grad():
        for p, total in zip(parameters, clipped_sum):
            noise = torch.normal(mean=0.0, std=noise_multiplier * max_grad_norm, size=p.shape, generator=generator)
            p -= (total + noise) / len(X)
    return torch.cat([p.detach().flatten() for p in parameters])


def check_same_update(data, *, max_grad_norm, batch_size=64, seed=0):
    """Parameters after one DP-SGD step in each mode, against the slow reference and against hooks."""
    X, y, _, _, num_classes = data
    batch = (X[:batch_size], y[:batch_size])
    base = make_model("cnn", input_shape=tuple(X.shape[1:]), num_classes=num_classes, seed=seed)
    before = torch.cat([p.detach().flatten() for p in base.parameters()])
    rows = []
    for noise_multiplier in (0.0, NOISE_MULTIPLIER):
        settings = {"max_grad_norm": max_grad_norm, "noise_multiplier": noise_multiplier, "noise_seed": seed}
        reference = _reference_step(copy.deepcopy(base), batch, **settings)
        after = {mode: _one_step(copy.deepcopy(base), batch, mode, **settings) for mode in GRAD_SAMPLE_MODES}
        for mode in GRAD_SAMPLE_MODES:
            rows.append(
                {
                    "noise_multiplier": noise_multiplier,
                    "mode": mode,
                    "update": (reference - before).abs().max().item(),
                    "vs_reference": (after[mode] - reference).abs().max().item(),
                    "vs_hooks": (after[mode] - after["hooks"]).abs().max().item(),
                }
            )
    return rows


# ---------------------------------------------------------------------------
# measurement


def _steady_epochs(run, clock="epoch_ends"):
    # The time between the ends of consecutive epochs. The first epoch, with the
    # set-up of the run before it, is the warm-up and is left out.
    ends = run[clock]
    return [later - earlier for earlier, later in zip(ends, ends[1:])]


def _epoch_median(runs, clock="epoch_ends"):
    return _median([value for run in runs for value in _steady_epochs(run, clock)])


def _pass_cpu_median(runs):
    return _median([value for run in runs for value in run["pass_cpu"][1:]])


def _variants(setup, private, non_private, delta, modes):
    """Every timed variant as (key, function of data) pairs, dpkit and bare, in one list."""
    variants = []
    bare = {
        "lr": private.lr,
        "momentum": private.momentum,
        "max_grad_norm": private.max_grad_norm,
        "max_physical_batch_size": private.max_physical_batch_size,
        "delta": delta,
    }
    for batch_size in setup["batch_sizes"]:
        main = batch_size == setup["batch_sizes"][0]
        # Non-private runs take the sweep's non-private learning rate, because a DP
        # learning rate of 4 makes unclipped SGD diverge and NaN arithmetic may run at another speed.
        settings = dict(bare, batch_size=batch_size, lr=non_private.lr, momentum=non_private.momentum)
        variants.append((("bare", batch_size, "non-private", "default"), _bind(bare_run, mode=None, **settings)))
        for mode in modes:
            settings = dict(bare, batch_size=batch_size)
            variants.append((("bare", batch_size, mode, "default"), _bind(bare_run, mode=mode, **settings)))
            if main and private.max_physical_batch_size < batch_size:
                settings = dict(settings, max_physical_batch_size=2 * batch_size)
                variants.append((("bare", batch_size, mode, "one physical batch"), _bind(bare_run, mode=mode, **settings)))
        if main:
            config = non_private.replace(batch_size=batch_size, seed=0)
            variants.append((("dpkit", batch_size, "non-private", "default"), _bind(dpkit_run, config=config)))
            for mode in modes:
                config = private.replace(
                    batch_size=batch_size,
                    target_epsilon=None,
                    noise_multiplier=NOISE_MULTIPLIER,
                    delta=delta,
                    accountant="rdp",
                    grad_sample_mode=mode,
                    seed=0,
                )
                variants.append((("dpkit", batch_size, mode, "default"), _bind(dpkit_run, config=config)))
    return variants


def _bind(function, **settings):
    def run(data, epochs):
        return function(data, epochs=epochs, **settings)

    return run


def measure(data, variants, epochs, repetitions, progress):
    """Run every variant for one epoch untimed, then ``repetitions`` times interleaved."""
    results = {key: [] for key, _ in variants}
    for key, run in variants:
        progress(f"warm-up: {' '.join(map(str, key))}")
        run(data, 1)
    for repetition in range(repetitions):
        # Rotate the order, so that no variant always runs right after the same one.
        shift = repetition % len(variants)
        for key, run in variants[shift:] + variants[:shift]:
            progress(f"repetition {repetition + 1}/{repetitions}: {' '.join(map(str, key))}")
            results[key].append(run(data, epochs))
    return results


# ---------------------------------------------------------------------------
# report


def _median(values):
    return statistics.median(values) if values else math.nan


def _spread(values):
    if len(values) < 2:
        return ""
    quartiles = statistics.quantiles(values, n=4)
    return f" ({quartiles[0]:.3f} to {quartiles[2]:.3f})"


def _phase_medians(runs):
    phases = [phase for run in runs for phase in run["phases"][1:]]
    return {name: _median([phase[name] for phase in phases]) for name in phases[0]} if phases else {}


def _training_pass(runs):
    phases = _phase_medians(runs)
    return phases["fetch"] + phases["train"]


def _verdict(value, goal):
    if math.isnan(value):
        return None
    return value <= goal


def _met_text(met):
    return {True: "met", False: "not met", None: "n/a"}[met]


def _header(setup, data_name, private, run):
    return [
        "# DP-SGD overhead",
        "",
        f"Written by `{setup['command']}`.",
        "",
        *run.markdown(),
        f"- Data: {data_name}; default CNN (`dpkit.models.make_model('cnn')`); SGD with momentum "
        f"{private.momentum}; max_grad_norm {private.max_grad_norm}; noise_multiplier {NOISE_MULTIPLIER} "
        f"(the time of a step does not depend on it); Poisson sampling; BatchMemoryManager with "
        f"max_physical_batch_size {private.max_physical_batch_size}; rdp accountant.",
        f"- Each run trains a fresh model for {setup['epochs']} epochs; the first epoch is a warm-up and is not "
        f"counted. {setup['repetitions']} repetitions, variants interleaved, after an untimed epoch of each. "
        "Figures are medians over the counted epochs, with the interquartile range in brackets. "
        "CPU time is this process's CPU time over all its threads: other processes on the machine "
        "change it less than the wall-clock time, so compare the two ratios on a shared machine.",
    ]


def _dp_over_non_dp(results, setup, modes, summary):
    main_batch = setup["batch_sizes"][0]
    lines = [
        "",
        "## DP-SGD training pass over the non-private one",
        "",
        "Wall-clock time of the training pass of one epoch (fetching batches, forward, backward, optimizer "
        "step) in the bare loop, without the evaluation after it.",
        "",
    ]
    rows = []
    for batch_size in setup["batch_sizes"]:
        non_private_runs = results[("bare", batch_size, "non-private", "default")]
        non_private_pass = _training_pass(non_private_runs)
        for mode in modes:
            runs = results[("bare", batch_size, mode, "default")]
            private_pass = _training_pass(runs)
            ratio = private_pass / non_private_pass
            cpu_ratio = _pass_cpu_median(runs) / _pass_cpu_median(non_private_runs)
            met = _verdict(ratio, GOAL_DP_OVER_NON_DP)
            rows.append(
                [
                    batch_size,
                    mode,
                    f"{private_pass:.3f}",
                    f"{non_private_pass:.3f}",
                    f"{ratio:.2f}",
                    f"{cpu_ratio:.2f}",
                    f"<= {GOAL_DP_OVER_NON_DP}",
                    _met_text(met),
                ]
            )
            if batch_size == main_batch:
                summary.append(
                    {
                        "measure": f"DP-SGD over non-private training pass, {mode}, batch {batch_size}",
                        "value": f"{ratio:.2f} (CPU time {cpu_ratio:.2f})",
                        "goal": f"<= {GOAL_DP_OVER_NON_DP}",
                        "met": met,
                    }
                )
    header = ["batch", "mode", "DP pass (s)", "non-private pass (s)", "ratio", "CPU-time ratio", "goal", "verdict"]
    return lines + _machine.markdown_table(header, rows, "rlrrrrrl")


def _dpkit_over_bare(results, setup, modes, summary):
    main_batch = setup["batch_sizes"][0]
    lines = [
        "",
        f"## dpkit.training.train over the bare loop (batch {main_batch})",
        "",
        "Epoch = training pass plus the evaluation of train and test accuracy and epsilon that both loops do "
        "after every epoch. Whole run = set-up and all epochs, the warm-up epoch included.",
        "",
    ]
    rows = []
    for mode in ("non-private", *modes):
        dpkit_runs = results[("dpkit", main_batch, mode, "default")]
        bare_runs = results[("bare", main_batch, mode, "default")]
        dpkit_epochs = [value for item in dpkit_runs for value in _steady_epochs(item)]
        bare_epochs = [value for item in bare_runs for value in _steady_epochs(item)]
        epoch_ratio = _median(dpkit_epochs) / _median(bare_epochs)
        cpu_ratio = _epoch_median(dpkit_runs, "cpu_ends") / _epoch_median(bare_runs, "cpu_ends")
        run_ratio = _median([item["seconds"] for item in dpkit_runs]) / _median([item["seconds"] for item in bare_runs])
        met = _verdict(epoch_ratio, GOAL_DPKIT_OVER_BARE)
        rows.append(
            [
                mode,
                f"{_median(dpkit_epochs):.3f}{_spread(dpkit_epochs)}",
                f"{_median(bare_epochs):.3f}{_spread(bare_epochs)}",
                f"{epoch_ratio:.3f}",
                f"{cpu_ratio:.3f}",
                f"{run_ratio:.3f}",
                f"<= {GOAL_DPKIT_OVER_BARE}",
                _met_text(met),
            ]
        )
        summary.append(
            {
                "measure": f"dpkit over bare Opacus loop, epoch, {mode}, batch {main_batch}",
                "value": f"{epoch_ratio:.3f} (CPU time {cpu_ratio:.3f})",
                "goal": f"<= {GOAL_DPKIT_OVER_BARE}",
                "met": met,
            }
        )
    header = [
        "mode", "dpkit epoch (s)", "bare epoch (s)", "epoch ratio", "CPU-time ratio", "whole-run ratio", "goal (epoch)", "verdict"
    ]
    lines += _machine.markdown_table(header, rows, "lrrrrrrl")

    dpkit_non_private = _epoch_median(results[("dpkit", main_batch, "non-private", "default")])
    ratios = [
        f"{mode} {_epoch_median(results[('dpkit', main_batch, mode, 'default')]) / dpkit_non_private:.2f}" for mode in modes
    ]
    lines += [
        "",
        f"Whole dpkit epochs (evaluation included), DP-SGD over non-private at batch {main_batch}: "
        + ", ".join(ratios)
        + ".",
    ]
    return lines


def _breakdown(results, setup, modes, private):
    main_batch = setup["batch_sizes"][0]
    lines = ["", f"## Where a bare epoch's time goes (batch {main_batch}, seconds, medians)", ""]
    rows, names = [], []
    for mode in ("non-private", *modes):
        phases = _phase_medians(results[("bare", main_batch, mode, "default")])
        names = list(phases)
        total = sum(phases.values())
        evaluation = phases["evaluate train"] + phases["evaluate test"]
        rows.append([mode, *(f"{phases[name]:.3f}" for name in names), f"{total:.3f}", f"{evaluation / total:.0%}"])
    lines += _machine.markdown_table(["mode", *names, "sum", "evaluation share"], rows, "l" + "r" * (len(names) + 2))

    one_batch = [mode for mode in modes if ("bare", main_batch, mode, "one physical batch") in results]
    if not one_batch:
        return lines
    lines += [
        "",
        f"## Physical batch size (batch {main_batch}, training pass, seconds)",
        "",
        f"dpkit's default max_physical_batch_size {private.max_physical_batch_size} splits each logical batch "
        f"of about {main_batch} examples into two physical batches; the alternative runs each logical batch at "
        "once (more memory, same update).",
        "",
    ]
    rows = []
    for mode in one_batch:
        split = _training_pass(results[("bare", main_batch, mode, "default")])
        whole = _training_pass(results[("bare", main_batch, mode, "one physical batch")])
        rows.append([mode, f"{split:.3f}", f"{whole:.3f}", f"{whole / split:.2f}"])
    header = ["mode", f"physical {private.max_physical_batch_size}", "one physical batch", "ratio"]
    return lines + _machine.markdown_table(header, rows, "lrrr")


def _same_update(update_rows, modes, summary):
    lines = [
        "",
        "## Same update in every mode",
        "",
        "One DP-SGD step (SGD, lr 1, no momentum) from the same weights on the same 64 examples, noise drawn "
        "from a generator with the same seed. Reference: per-example gradients by a plain loop, clipped, "
        "summed, noised and averaged. Figures are the maximum absolute difference over all parameters.",
        "",
    ]
    rows = [
        [f"{row['noise_multiplier']:g}", row["mode"], f"{row['update']:.2e}", f"{row['vs_reference']:.2e}", f"{row['vs_hooks']:.2e}"]
        for row in update_rows
    ]
    lines += _machine.markdown_table(["noise_multiplier", "mode", "largest update", "vs reference", "vs hooks"], rows, "rlrrr")
    same = {mode: all(row["vs_reference"] <= UPDATE_TOLERANCE for row in update_rows if row["mode"] == mode) for mode in modes}
    summary.append(
        {
            "measure": "grad-sample modes give the same clipped, noised update",
            "value": ", ".join(f"{mode} {'yes' if same[mode] else 'NO'}" for mode in modes),
            "goal": f"max abs difference <= {UPDATE_TOLERANCE:g}",
            "met": all(same.values()),
        }
    )
    return lines, same


def summarize(results, setup, modes, update_rows, data_name, private, run):
    """Return the markdown section, the summary rows for RESULTS.md and the fastest modes."""
    main_batch = setup["batch_sizes"][0]
    summary = []
    lines = _header(setup, data_name, private, run)
    lines += _dp_over_non_dp(results, setup, modes, summary)
    lines += _dpkit_over_bare(results, setup, modes, summary)
    lines += _breakdown(results, setup, modes, private)
    update_lines, same = _same_update(update_rows, modes, summary)
    lines += update_lines

    def pass_time(mode):
        return _training_pass(results[("bare", main_batch, mode, "default")])

    fastest = min(modes, key=pass_time)
    fastest_same = min((mode for mode in modes if same[mode]), key=pass_time, default=None)
    lines += [
        "",
        f"Fastest mode at batch {main_batch} (training pass, wall-clock): **{fastest}**. "
        f"Fastest mode that gives the reference update: **{fastest_same}**.",
    ]
    summary.append(
        {"measure": f"fastest grad-sample mode with the same update, batch {main_batch}", "value": str(fastest_same), "goal": "", "met": None}
    )
    return "\n".join(lines), summary, {"fastest": fastest, "fastest_same_update": fastest_same}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits, batch 256, one repetition: checks the script")
    parser.add_argument("--repetitions", type=int, help="timed repetitions of every variant (default: 5; quick: 1)")
    parser.add_argument("--epochs", type=int, help="epochs per run, the first one uncounted (default: 3; quick: 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="logical batch sizes; the first is the main one (default: 1000 256)")
    parser.add_argument("--modes", nargs="+", choices=GRAD_SAMPLE_MODES, default=list(GRAD_SAMPLE_MODES), help="grad-sample modes")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch intra-op threads (default: torch's choice, one per core). On a machine shared with other "
        "work, 1 avoids the waits of a thread pool whose threads are descheduled",
    )
    arguments = parser.parse_args(argv)
    if arguments.threads is not None:
        if arguments.threads < 1:
            parser.error(f"--threads must be at least 1, got {arguments.threads}")
        torch.set_num_threads(arguments.threads)

    setup = dict(SETUPS["quick" if arguments.quick else "full"], name="quick" if arguments.quick else "full")
    for name in ("repetitions", "epochs", "batch_sizes"):
        if getattr(arguments, name) is not None:
            setup[name] = tuple(getattr(arguments, name)) if name == "batch_sizes" else getattr(arguments, name)
    if setup["epochs"] < 2:
        parser.error("--epochs must be at least 2: the first epoch of every run is a warm-up")
    modes = tuple(arguments.modes)
    setup["command"] = " ".join(["python benchmarks/dp_overhead.py", *(argv if argv is not None else sys.argv[1:])])

    # Opacus warns that its secure RNG is off and torch that a full backward hook fires
    # on inputs without grad; neither matters to a timing.
    warnings.filterwarnings("ignore", category=UserWarning)
    run = _machine.Run()
    private, non_private, delta = sweep_settings()
    dataset = load(setup["dataset"])
    data = (dataset.X_train, dataset.y_train, dataset.X_test, dataset.y_test, dataset.num_classes)

    def progress(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    progress("checking that the modes give the same update")
    update_rows = check_same_update(data, max_grad_norm=private.max_grad_norm)
    variants = _variants(setup, private, non_private, delta, modes)
    results = measure(data, variants, setup["epochs"], setup["repetitions"], progress)
    run.finish()

    data_name = f"{setup['dataset']} ({len(dataset.X_train)} train, {len(dataset.X_test)} test images)"
    markdown, summary, extra = summarize(results, setup, modes, update_rows, data_name, private, run)
    _machine.write_section("dp_overhead", markdown, summary, run, extra={"setup": setup, **extra})
    print(markdown)


if __name__ == "__main__":
    main()
