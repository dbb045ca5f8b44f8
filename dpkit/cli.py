"""The ``dpkit`` command: sweeps, reports and privacy accounting from the shell."""

import argparse
import logging
import math
import os
import sys

DEFAULT_OUT = os.path.join("outputs", "main")


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _add_sweep(commands):
    parser = commands.add_parser(
        "sweep",
        help="train a privacy-utility sweep and write records, a table and figures",
        description="Train without DP and with DP-SGD at each target epsilon over several seeds, "
        "then write records (JSON Lines), a CSV table and figures. Re-running resumes: finished runs "
        "are read from the records file instead of being trained again.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--dataset", default=None, help="dataset name (default: mnist-5k)")
    parser.add_argument("--epsilons", type=_positive_float, nargs="+", help="target epsilons (default: 0.5 1 2 4 8)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default: 0 1 2; 0 in the fast profile)")
    parser.add_argument("--delta", type=_positive_float, default=None, help="target delta (default: 1e-5)")
    parser.add_argument("--accountant", choices=("rdp", "prv", "gdp"), default=None, help="accountant (default: rdp)")
    parser.add_argument("--no-attacks", action="store_true", help="skip the membership-inference attacks")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_report(commands):
    parser = commands.add_parser("report", help="write the table and figures of an existing records file")
    parser.add_argument("records", help="records file (JSON Lines) written by dpkit sweep")
    parser.add_argument("--out", default=None, help="output folder (default: the records file's folder)")


def _add_epsilon(commands):
    parser = commands.add_parser(
        "epsilon",
        help="epsilon of DP-SGD under the rdp, prv and gdp accountants",
        description="Print the epsilon spent by DP-SGD for a noise multiplier, sample rate, number of "
        "steps or epochs and delta, under each of Opacus's accountants.",
    )
    parser.add_argument("--noise-multiplier", type=float, required=True, help="noise std over max_grad_norm (sigma)")
    parser.add_argument("--sample-rate", type=float, required=True, help="Poisson sampling rate q = batch size / n")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--epochs", type=float, help="epochs (steps = epochs / sample rate)")
    group.add_argument("--steps", type=int, help="optimizer steps")
    parser.add_argument("--delta", type=float, required=True, help="target delta, in (0, 1)")


def _add_audit(commands):
    parser = commands.add_parser(
        "audit",
        help="empirical epsilon lower bound from attack scores, against a claimed epsilon",
        description="Read membership scores (a CSV file with columns is_member and score, higher score "
        "meaning member) and report AUC, TPR at low FPR and an empirical epsilon lower bound with "
        "Clopper-Pearson confidence. With --epsilon, say whether the claim is refuted; the exit "
        "status is then 1 when it is refuted and 0 when it is not.",
    )
    parser.add_argument("scores", help="CSV file with columns is_member (0/1) and score")
    parser.add_argument("--delta", type=float, required=True, help="delta of the claimed guarantee")
    parser.add_argument("--epsilon", type=float, default=None, help="claimed epsilon to test")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the bound (default 0.95)")
    parser.add_argument(
        "--method", choices=("split", "bonferroni"), default="split",
        help="how the threshold is chosen without optimistic reuse (default: split)",
    )


def build_parser():
    parser = argparse.ArgumentParser(prog="dpkit", description="Differential privacy in deep learning: sweeps, attacks and accounting.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_sweep(commands)
    _add_report(commands)
    _add_epsilon(commands)
    _add_audit(commands)
    return parser


def _epsilon(args):
    from dpkit.privacy import epsilons, steps_from_epochs

    values = epsilons(
        noise_multiplier=args.noise_multiplier,
        sample_rate=args.sample_rate,
        steps=args.steps,
        epochs=args.epochs,
        delta=args.delta,
    )
    if args.steps is not None:
        steps = str(args.steps)
    else:
        steps = f"{steps_from_epochs(epochs=args.epochs, sample_rate=args.sample_rate)} ({args.epochs:g} epochs)"
    print(f"noise_multiplier={args.noise_multiplier:g}  sample_rate={args.sample_rate:g}  steps={steps}  delta={args.delta:g}")
    for accountant, value in values.items():
        text = f"{value:.4f}" if isinstance(value, float) else f"not available: {value}"
        print(f"  epsilon = {text}  (delta = {args.delta:g}, {accountant} accountant)")
    return 0


def _sweep(args):
    import dataclasses

    from dpkit.experiments import main_sweep, run_sweep
    from dpkit.report import write_report

    sweep = main_sweep()
    changes = {}
    if args.dataset:
        changes["dataset"] = args.dataset
    if args.epsilons:
        changes["target_epsilons"] = tuple(args.epsilons)
    if args.seeds:
        changes["seeds"] = tuple(args.seeds)
    if args.delta:
        changes["delta"] = args.delta
    if args.accountant:
        changes["accountant"] = args.accountant
    if args.no_attacks:
        changes["attacks"] = ()
    sweep = dataclasses.replace(sweep, **changes).validate()

    os.makedirs(args.out, exist_ok=True)
    records_path = os.path.join(args.out, "records.jsonl")
    print(f"dpkit sweep: {len(sweep.runs())} runs on {sweep.dataset}; records in {records_path}", flush=True)
    records = run_sweep(sweep, records_path, progress=not args.quiet)
    paths = write_report(records, args.out)
    print(paths["text"])
    print(f"\nOutputs written to {os.path.abspath(args.out)}:")
    for name in ("records", "table", "figures"):
        for path in paths[name] if isinstance(paths[name], list) else [paths[name]]:
            print(f"  {path}")
    return 0


def _report(args):
    from dpkit.report import write_report
    from dpkit.store import ResultStore

    records = ResultStore(args.records).records()
    if not records:
        print(f"dpkit report: no records found in {args.records}. Run dpkit sweep first.", file=sys.stderr)
        return 2
    paths = write_report(records, args.out or os.path.dirname(os.path.abspath(args.records)))
    print(paths["text"])
    return 0


def _audit(args):
    import pandas as pd

    from dpkit import audit

    if args.epsilon is not None and not (args.epsilon >= 0):
        print(f"dpkit audit: --epsilon must be >= 0, got {args.epsilon}. Pass the claimed epsilon.", file=sys.stderr)
        return 2
    try:
        frame = pd.read_csv(args.scores)
    except FileNotFoundError:
        print(f"dpkit audit: scores file not found: {args.scores}. Pass a CSV file with columns is_member and score.", file=sys.stderr)
        return 2
    missing = {"is_member", "score"} - set(frame.columns)
    if missing:
        print(f"dpkit audit: {args.scores} lacks the column(s) {', '.join(sorted(missing))}; "
              "it needs is_member (0/1) and score.", file=sys.stderr)
        return 2
    y_true, y_score = frame["is_member"].to_numpy(), frame["score"].to_numpy()
    summary = audit.summarize(y_true, y_score, ci=True)
    bound = audit.epsilon_lower_bound(y_true, y_score, delta=args.delta, confidence=args.confidence, method=args.method)
    print(f"{summary['n_members']} members, {summary['n_non_members']} non-members")
    print(f"AUC {summary['auc']:.4f} [{summary['auc_low']:.4f}, {summary['auc_high']:.4f}]")
    for key in ("tpr@0.1%", "tpr@1%"):
        print(f"{key.replace('@', ' at ')} FPR: {summary[key]:.4f} [{summary[key + '_low']:.4f}, {summary[key + '_high']:.4f}]")
    print(f"empirical epsilon lower bound: {bound.epsilon:.4f} (delta = {args.delta:g}, "
          f"confidence {args.confidence:g}, threshold chosen by {bound.method})")
    if args.epsilon is not None:
        refuted = bound.epsilon > args.epsilon
        verdict = "refuted: the lower bound exceeds it" if refuted else "not refuted: the lower bound does not exceed it"
        print(f"claimed epsilon {args.epsilon:g}: {verdict}")
        return 1 if refuted else 0
    return 0


def main(argv=None):
    """Entry point of the ``dpkit`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"epsilon": _epsilon, "sweep": _sweep, "report": _report, "audit": _audit}
    try:
        return handlers[args.command](args)
    except ValueError as error:
        print(f"dpkit {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
