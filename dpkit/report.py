"""Tables and figures of a sweep's records, written to a folder."""

import math
import os

import numpy as np

from dpkit import plots
from dpkit.experiments import results_table
from dpkit.store import number, write_text_atomic


def format_table(table):
    """Render the results table as aligned text; epsilon always with its delta and accountant."""
    lines = []
    header = f"{'target eps':>10}  {'achieved epsilon (delta, accountant)':<36}  {'test accuracy':>15}"
    attack_columns = [c for c in table.columns if c.endswith(("_auc", "_tpr_at_1pct_fpr", "_epsilon_lower_bound"))]
    names = {
        "_auc": "AUC",
        "_tpr_at_1pct_fpr": "TPR@1%FPR",
        "_epsilon_lower_bound": "eps lower bd",
    }
    labels = []
    for column in attack_columns:
        for suffix, short in names.items():
            if column.endswith(suffix):
                labels.append(f"{column[: -len(suffix)]} {short}")
    header += "".join(f"  {label:>18}" for label in labels)
    lines.append(header)
    lines.append("-" * len(header))
    for _, row in table.iterrows():
        if math.isinf(row["target_epsilon"]):
            target, achieved = "none", "inf (non-private)"
        else:
            target = f"{row['target_epsilon']:g}"
            achieved = f"{row['epsilon']:.3f} ({row['delta']:g}, {row['accountant']})"
        std = row["accuracy_std"]
        accuracy = f"{row['accuracy_mean']:.4f}" + (f" ± {std:.4f}" if std == std else "")
        line = f"{target:>10}  {achieved:<36}  {accuracy:>15}"
        line += "".join(f"  {row[c]:>18.3f}" for c in attack_columns)
        lines.append(line)
    return "\n".join(lines)


def write_report(records, out):
    """Write ``table.csv`` and figures for ``records`` into ``out``; return the paths and the text table."""
    os.makedirs(out, exist_ok=True)
    table = results_table(records)
    table_path = os.path.join(out, "table.csv")
    write_text_atomic(table_path, table.to_csv(index=False))

    figures = []
    privacy_utility = plots.privacy_utility(table, title=f"{records[0]['settings']['dataset']}: privacy-utility trade-off")
    figures.append(_save(privacy_utility, os.path.join(out, "privacy_utility.png")))
    if any(c.endswith("_auc") for c in table.columns):
        figures.append(_save(plots.attack_auc(table), os.path.join(out, "attack_auc.png")))
        figures.append(_save(roc_figure(records), os.path.join(out, "roc.png")))
    return {
        "records": os.path.join(out, "records.jsonl"),
        "table": table_path,
        "figures": figures,
        "text": format_table(table),
        "frame": table,
    }


def roc_figure(records, *, attack="lira", low=1e-3):
    """Log-log ROC curves of one attack, one per privacy level (first seed), each with its DP bound.

    The bound is the highest TPR that any attack can reach against a mechanism
    with the run's achieved (epsilon, delta); the non-private run has none.
    """
    from dpkit import audit

    first_seed = min(record["settings"]["seed"] for record in records)
    curves, bounds = {}, {}
    grid = np.logspace(np.log10(low), 0, 200)
    chosen = [r for r in records if r["settings"]["seed"] == first_seed and attack in r["results"].get("attacks", {})]
    chosen.sort(key=lambda r: math.inf if r["settings"]["target_epsilon"] is None else r["settings"]["target_epsilon"])
    for record in chosen:
        results = record["results"]
        roc = results["attacks"][attack]["roc"]
        if record["settings"]["target_epsilon"] is None:
            label = "non-private"
        else:
            epsilon = number(results["epsilon"])
            label = f"epsilon {epsilon:.2g}"
            bounds[f"{label} bound"] = (grid, audit.dp_roc_bound(grid, epsilon=epsilon, delta=results["delta"]))
        curves[label] = (roc["fpr"], roc["tpr"])
    accountant = next((r["results"]["accountant"] for r in chosen if r["results"]["accountant"]), "rdp")
    delta = next((r["results"]["delta"] for r in chosen if r["results"]["delta"]), None)
    title = f"{attack} ROC with DP bounds (delta = {delta:g}, {accountant} accountant)" if delta else f"{attack} ROC"
    return plots.roc_curves(curves, bounds=bounds, title=title, low=low)


def _save(figure, path):
    temporary = path + ".tmp.png"
    figure.savefig(temporary, dpi=120)
    os.replace(temporary, path)
    return path
