"""Attack power against reference-model cost, all from one target and one bank.

The script trains one overfit, non-private target on a membership split and one
bank of 16 reference models. It reports AUC and TPR at low FPR for LiRA (online
and offline) and RMIA (offline and online) with the first 1, 2, 4, 8 and 16
models of the bank, next to the loss, confidence and shadow-model attacks. It
also times reference-model training one by one against vectorised training.

    python benchmarks/attack_power.py                # mnist-5k, CNN
    python benchmarks/attack_power.py --quick        # digits, MLP
    python benchmarks/attack_power.py --threads 1    # one torch thread, for a busy machine

The section goes to benchmarks/results/attack_power.md (and .json) and to stdout.
"""

import argparse
import dataclasses
import functools
import sys
import time

import numpy as np
import torch

import _machine  # benchmarks/_machine.py: Python puts the script's folder on sys.path
from dpkit import audit
from dpkit.attacks import ReferenceBank, confidence_attack, lira, loss_attack, rmia, shadow_attack
from dpkit.data import load, membership_split
from dpkit.training import TrainConfig, train

BANK_SIZES = (1, 2, 4, 8, 16)
GOAL_RATIO = 0.8

SETUPS = {
    # The pool contains the candidates (members and non-members) and a population of
    # the same size, so reference models train on 1.5 times the target's data.
    "full": {
        "dataset": "mnist-5k",
        "n_members": 1000,
        "n_population": 1000,
        "config": TrainConfig(model="cnn", epochs=20, batch_size=32, lr=0.05),
        "n_shadow": 4,
        # Vectorised training is timed on a smaller bank here: for this CNN on CPU it saves
        # little time, and a second bank of 16 would double the run.
        "n_vectorized": 4,
    },
    "quick": {
        "dataset": "digits",
        "n_members": 200,
        "n_population": 200,
        "config": TrainConfig(model="mlp", epochs=30, batch_size=32, lr=0.1),
        "n_shadow": 4,
        "n_vectorized": 16,
    },
}


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def metrics(result, fprs):
    """Compute the AUC, the TPR at each FPR and a 95% stratified bootstrap interval on the TPR at 1% FPR."""
    row = {"auc": result.auc()}
    for fpr in fprs:
        row[fpr] = result.tpr_at_fpr(fpr)
    tpr_at_1pct = functools.partial(audit.tpr_at_fpr, fpr=0.01)
    row["ci"] = audit.bootstrap_ci(result.is_member, result.scores, tpr_at_1pct, n_bootstrap=500, seed=0)
    return row


def run_attacks(setup, config, fprs):
    """Train the target and the banks, run every attack; return the rows and what the notes need."""
    dataset = load(setup["dataset"])
    split = membership_split(dataset, n_members=setup["n_members"], seed=0)
    pool = np.concatenate([split.members, split.non_members, split.population[: setup["n_population"]]])
    shadow_pool = split.population[setup["n_population"] :]
    X_pool, y_pool = dataset.X_train[pool], dataset.y_train[pool]
    index = np.arange(2 * setup["n_members"])
    is_member = index < setup["n_members"]

    progress(f"training the target on {setup['n_members']} {setup['dataset']} examples")
    target = train(split.member_data(), config, test=(dataset.X_test, dataset.y_test), progress=False)
    progress(f"training 16 reference models one by one on halves of a pool of {len(pool)}")
    bank = ReferenceBank.train(X_pool, y_pool, n_models=16, config=config, seed=0, progress=False)
    progress(f"training {setup['n_vectorized']} reference models vectorised")
    vectorized = ReferenceBank.train(
        X_pool, y_pool, n_models=setup["n_vectorized"], config=config, seed=0, progress=False, vectorized=True
    )

    progress("running the attacks")
    kwargs = {"index": index, "is_member": is_member, "X_pool": X_pool, "y_pool": y_pool}
    X, y = X_pool[index], y_pool[index]
    rows = [
        ("loss", "-", 0, 0.0, metrics(loss_attack(target.model, X, y, is_member), fprs)),
        ("confidence", "-", 0, 0.0, metrics(confidence_attack(target.model, X, y, is_member), fprs)),
    ]
    if len(shadow_pool) >= 2 * config.batch_size:
        started = time.perf_counter()
        shadow = shadow_attack(
            target.model, X, y, is_member,
            shadow_X=dataset.X_train[shadow_pool], shadow_y=dataset.y_train[shadow_pool],
            config=config, n_shadow=setup["n_shadow"], progress=False,
        )
        name = f"shadow ({len(shadow_pool)} own examples)"
        rows.append((name, "-", setup["n_shadow"], time.perf_counter() - started, metrics(shadow, fprs)))

    for count in BANK_SIZES:
        cost = float(bank.seconds[:count].sum())
        if count >= 2:
            for online in (True, False):
                result = lira(target.model, bank, n_reference=count, online=online, **kwargs)
                rows.append(("LiRA", "online" if online else "offline", count, cost, metrics(result, fprs)))
            result = rmia(target.model, bank, n_reference=count, online=True, **kwargs)
            rows.append(("RMIA", "online", count, cost, metrics(result, fprs)))
        rows.append(("RMIA", "offline", count, cost, metrics(rmia(target.model, bank, n_reference=count, **kwargs), fprs)))

    vectorized_lira = metrics(lira(target.model, vectorized, **kwargs), fprs)
    return rows, target, bank, vectorized, vectorized_lira, len(pool)


def find_row(rows, attack, variant, count):
    return next(row[4] for row in rows if row[:3] == (attack, variant, count))


def build_section(setup, config, fprs, rows, target, bank, vectorized, vectorized_lira, n_pool, run, quick):
    lira_16 = find_row(rows, "LiRA", "online", 16)
    best_4 = max((row for row in rows if row[2] == 4 and row[0] in ("LiRA", "RMIA")), key=lambda row: row[4][0.01])
    ratio = best_4[4][0.01] / lira_16[0.01] if lira_16[0.01] > 0 else float("nan")
    met = bool(ratio >= GOAL_RATIO)
    n_vectorized = setup["n_vectorized"]
    same_size_lira = find_row(rows, "LiRA", "online", n_vectorized)

    lines = [
        "# Attack power against reference-model cost",
        "",
        f"Written by `python benchmarks/attack_power.py{' --quick' if quick else ''}`.",
        "",
        *run.markdown(),
        f"- Data: {setup['dataset']}; the target trains on {setup['n_members']} members (train accuracy "
        f"{target.train_accuracy:.3f}, test accuracy {target.test_accuracy:.3f}); {setup['n_members']} held-out "
        "non-members are the other candidates.",
        f"- Pool of the reference bank: the {2 * setup['n_members']} candidates and {setup['n_population']} population "
        f"examples ({n_pool}); each reference model trains on half of it. RMIA compares with the "
        f"{setup['n_population']} population examples.",
        f"- Training (target and reference models): model={config.model}, epochs={config.epochs}, "
        f"batch_size={config.batch_size}, lr={config.lr}, SGD momentum={config.momentum}, no noise.",
        f"- Reference models: accuracy {bank.in_accuracy.mean():.3f} on their training half, "
        f"{bank.out_accuracy.mean():.3f} on the other half.",
        "- LiRA uses a global variance (fewer than 64 models); RMIA uses gamma=1 and a=0.3.",
        "- Reference models = the first k models of the bank, the attack's training cost. Offline attacks use the "
        "OUT half of them for each candidate (k/2 models). With k=1, RMIA inverts its approximation for the "
        "candidates that trained the model. Bank seconds = training time of those k models, one by one.",
        "",
        "## Results",
        "",
    ]
    header = ["attack", "variant", "reference models", "bank seconds", "AUC"]
    header += [f"TPR@{fpr:.1%} FPR" for fpr in fprs] + ["95% CI of TPR@1%"]
    table = []
    for name, variant, count, seconds, row in rows:
        cells = [name, variant, count, f"{seconds:.1f}", f"{row['auc']:.3f}"]
        cells += [f"{row[fpr]:.3f}" for fpr in fprs] + [f"{row['ci'][0]:.3f} to {row['ci'][1]:.3f}"]
        table.append(cells)
    lines += _machine.markdown_table(header, table, align="llrrr" + "r" * len(fprs) + "l")
    lines += [
        "",
        f"Goal: the strongest attack with 4 reference models reaches at least {GOAL_RATIO:.0%} of the TPR at 1% FPR "
        f"of LiRA online with 16. Best with 4: {best_4[0]} {best_4[1]}, TPR@1% {best_4[4][0.01]:.3f}; "
        f"LiRA online with 16: {lira_16[0.01]:.3f}; ratio {ratio:.2f} ({'met' if met else 'not met'}).",
        "",
        "Notes:",
        "",
        f"- RMIA scores move in steps of 1/{setup['n_population']} (the population size). A non-member beats every "
        f"population example with probability 1/{setup['n_population'] + 1} when both come from the same "
        "distribution, so at FPRs near that step a few tied top scores decide RMIA's TPR.",
        "- Offline attacks use k/2 OUT models per candidate here, because the bank's models also train on the "
        "candidates. An offline attacker who trains k models on data without the candidates gets k OUT models for "
        "the same cost, so the offline rows understate offline power per model trained.",
        "",
        "## Reference-model training time",
        "",
        "Seconds per model include scoring the pool. The last columns check that a vectorised bank is as strong "
        f"as one trained model by model: LiRA online with the first {n_vectorized} models of each.",
        "",
    ]
    lines += _machine.markdown_table(
        ["training", "models trained", "seconds per reference model", f"LiRA ({n_vectorized}) AUC", f"LiRA ({n_vectorized}) TPR@1%"],
        [
            ["one by one (`dpkit.training.train`)", len(bank), f"{bank.seconds.mean():.2f}",
             f"{same_size_lira['auc']:.3f}", f"{same_size_lira[0.01]:.3f}"],
            ["vectorised (`vectorized=True`, torch.func)", len(vectorized), f"{vectorized.seconds.mean():.2f}",
             f"{vectorized_lira['auc']:.3f}", f"{vectorized_lira[0.01]:.3f}"],
        ],
        align="lrrrr",
    )

    rmia_2 = find_row(rows, "RMIA", "offline", 2)
    lira_offline_2 = find_row(rows, "LiRA", "offline", 2)
    summary = [
        {
            "measure": "TPR@1% FPR of the strongest attack with 4 reference models over LiRA online with 16",
            "value": f"{ratio:.2f} ({best_4[0]} {best_4[1]} {best_4[4][0.01]:.3f} vs {lira_16[0.01]:.3f})",
            "goal": f">= {GOAL_RATIO}",
            "met": met,
        },
        {
            "measure": "LiRA online with 16 reference models: TPR@1% FPR, AUC",
            "value": f"{lira_16[0.01]:.3f}, {lira_16['auc']:.3f}",
            "goal": "",
            "met": None,
        },
        {
            "measure": "TPR@1% FPR with 2 reference models: RMIA offline, LiRA offline",
            "value": f"{rmia_2[0.01]:.3f}, {lira_offline_2[0.01]:.3f}",
            "goal": "",
            "met": None,
        },
        {
            "measure": f"seconds per reference model ({config.model}): one by one, vectorised",
            "value": f"{bank.seconds.mean():.2f}, {vectorized.seconds.mean():.2f}",
            "goal": "",
            "met": None,
        },
    ]
    return "\n".join(lines) + "\n", summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits and an MLP instead of mnist-5k and a CNN")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    arguments = parser.parse_args(argv)
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    setup = SETUPS["quick" if arguments.quick else "full"]
    config = setup["config"]
    # TPR at 0.1% FPR needs at least 1000 non-members to mean more than "no false positive at all".
    fprs = (0.001, 0.01) if setup["n_members"] >= 1000 else (0.01,)

    run = _machine.Run()
    rows, target, bank, vectorized, vectorized_lira, n_pool = run_attacks(setup, config, fprs)
    run.finish()

    markdown, summary = build_section(
        setup, config, fprs, rows, target, bank, vectorized, vectorized_lira, n_pool, run, arguments.quick
    )
    extra = {
        "setup": {**{key: value for key, value in setup.items() if key != "config"}, "config": dataclasses.asdict(config)},
        "rows": [
            {"attack": name, "variant": variant, "reference_models": count, "bank_seconds": seconds,
             "auc": row["auc"], **{f"tpr@{fpr:g}": row[fpr] for fpr in fprs}, "tpr@0.01_ci": list(row["ci"])}
            for name, variant, count, seconds, row in rows
        ],
    }
    _machine.write_section("attack_power", markdown, summary, run, extra=extra)
    print(markdown)


if __name__ == "__main__":
    main()
