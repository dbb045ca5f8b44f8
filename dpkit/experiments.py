"""Sweeps over privacy levels and seeds, with resumable results.

A :class:`Sweep` lists runs: one non-private baseline and one DP-SGD run per
target epsilon, each over several seeds. :func:`run_sweep` trains every run that
the :class:`~dpkit.store.ResultStore` does not hold yet and appends one record per
run, so an interrupted sweep resumes where it stopped.
"""

import dataclasses
import datetime
import logging
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from dpkit import data as datasets
from dpkit._checks import DPKitWarning, check_choice, check_int, check_open_unit, check_positive, invalid
from dpkit.attacks import ATTACKS
from dpkit.privacy import ACCOUNTANTS
from dpkit.profile import pick
from dpkit.store import ResultStore, number, settings_key
from dpkit.training import TrainConfig, predict_logits, train

logger = logging.getLogger(__name__)

__all__ = ["Sweep", "run_sweep", "ResultStore", "results_table", "library_versions", "main_sweep"]


def library_versions():
    """Versions of Python, dpkit and the libraries that shape the numbers."""
    import matplotlib
    import opacus
    import scipy
    import sklearn

    import dpkit

    return {
        "python": platform.python_version(),
        "dpkit": dpkit.__version__,
        "torch": torch.__version__,
        "opacus": opacus.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "matplotlib": matplotlib.__version__,
    }


@dataclass(frozen=True)
class Sweep:
    """The runs of a privacy-utility sweep.

    Attributes
    ----------
    dataset : str
        A name from :func:`dpkit.data.available`.
    target_epsilons : tuple of float
        Privacy levels; each gets one DP-SGD run per seed. ``include_baseline``
        adds a non-private run per seed.
    seeds : tuple of int
    delta : float
    accountant : {"rdp", "prv", "gdp"}
    private : TrainConfig
        Settings of the DP-SGD runs; ``target_epsilon``, ``delta``, ``accountant``
        and ``seed`` are filled in per run.
    non_private : TrainConfig
        Settings of the baseline runs.
    epochs : dict, optional
        Epochs per target epsilon, overriding ``private.epochs``. Fewer epochs at
        small epsilon leave less noise per step.
    split_seed : int
        Seed of the dataset's train/test split.
    attacks : tuple of str
        Membership-inference attacks run against every target (names from
        :data:`dpkit.attacks.ATTACKS`); empty for none.
    bank_size : int
        Reference models in the bank shared by LiRA and RMIA (even).
    bank : TrainConfig
        How each reference model is trained (non-private by default: the attacker
        imitates the training data, not the defence).
    n_attack_members : int
        Training members queried by the attacks, next to every test example as a
        non-member.
    attack_seed : int
        Seeds the bank and the choice of queried members.
    """

    dataset: str = "mnist-5k"
    target_epsilons: tuple = (0.5, 1.0, 2.0, 4.0, 8.0)
    seeds: tuple = (0, 1, 2)
    delta: float = 1e-5
    accountant: str = "rdp"
    include_baseline: bool = True
    private: TrainConfig = TrainConfig(epochs=20, batch_size=1000, lr=4.0, momentum=0.9, max_grad_norm=0.1)
    non_private: TrainConfig = TrainConfig(epochs=15, batch_size=64, lr=0.1, momentum=0.9)
    epochs: dict = field(default_factory=dict)
    split_seed: int = 0
    attacks: tuple = ("loss", "lira")
    bank_size: int = 8
    bank: TrainConfig = TrainConfig(epochs=10, batch_size=64, lr=0.1, momentum=0.9)
    n_attack_members: int = 1000
    attack_seed: int = 0

    def validate(self):
        """Check the sweep's settings; raise ``ValueError`` naming the first bad one."""
        if self.dataset not in datasets.available():
            raise invalid("dataset", "one of " + ", ".join(datasets.available()), self.dataset, "Call dpkit.data.available().")
        if not self.target_epsilons and not self.include_baseline:
            raise invalid("target_epsilons", "non-empty, or include_baseline=True", self.target_epsilons, "Add a privacy level.")
        for value in self.target_epsilons:
            check_positive("target_epsilons", value, "Every target epsilon must be greater than 0, e.g. (1, 2, 4, 8).")
        if not self.seeds:
            raise invalid("seeds", "a non-empty tuple of integers", self.seeds, "Pass seeds=(0,) or more.")
        for seed in self.seeds:
            check_int("seed", seed, "Seeds are non-negative integers.", minimum=0)
        check_open_unit("delta", self.delta, "Use a delta well below 1/n, e.g. 1e-5.")
        check_choice("accountant", self.accountant, ACCOUNTANTS)
        for name in self.attacks:
            check_choice("attacks", name, tuple(ATTACKS))
        if self.attacks:
            check_int("bank_size", self.bank_size, "Use an even number of reference models, at least 2.", minimum=2)
            check_int("n_attack_members", self.n_attack_members, "Query at least one member.")
        return self

    def runs(self):
        """Return the TrainConfig of every run, baseline first."""
        self.validate()
        configs = []
        for seed in self.seeds:
            if self.include_baseline:
                configs.append(self.non_private.replace(seed=seed, target_epsilon=None, noise_multiplier=None))
            for target in self.target_epsilons:
                configs.append(
                    self.private.replace(
                        seed=seed,
                        target_epsilon=float(target),
                        noise_multiplier=None,
                        delta=self.delta,
                        accountant=self.accountant,
                        epochs=int(self.epochs.get(target, self.epochs.get(float(target), self.private.epochs))),
                    )
                )
        return configs

    def attack_settings(self):
        """Return the attack settings, which are part of every run's key when attacks run."""
        if not self.attacks:
            return None
        return {
            "attacks": list(self.attacks),
            "bank_size": self.bank_size,
            "bank": dataclasses.asdict(self.bank),
            "n_attack_members": self.n_attack_members,
            "attack_seed": self.attack_seed,
        }

    def settings_of(self, config):
        """Return the settings that identify one run and so determine its record key."""
        settings = {"dataset": self.dataset, "split_seed": self.split_seed, **dataclasses.asdict(config)}
        if self.attacks:
            settings["attack"] = self.attack_settings()
        return settings


def main_sweep():
    """The main job's sweep on mnist-5k, shrunk under the fast profile.

    DP runs use large batches (1,000 of 4,000 examples), a high learning rate with
    momentum and a small clipping norm, which suit DP-SGD on small data
    (Tramer and Boneh 2021). Epochs grow with epsilon.
    """
    return Sweep(
        dataset="mnist-5k",
        target_epsilons=(0.5, 1.0, 2.0, 4.0, 8.0),
        seeds=pick(full=(0, 1, 2), fast=(0,)),
        epochs=pick(
            full={0.5: 10, 1.0: 15, 2.0: 20, 4.0: 30, 8.0: 60},
            fast={0.5: 2, 1.0: 2, 2.0: 3, 4.0: 3, 8.0: 4},
        ),
        non_private=TrainConfig(epochs=pick(full=15, fast=2), batch_size=64, lr=0.1, momentum=0.9),
        bank_size=pick(full=8, fast=2),
        bank=TrainConfig(epochs=pick(full=10, fast=2), batch_size=64, lr=0.1, momentum=0.9),
        n_attack_members=pick(full=1000, fast=300),
    )


def per_class_accuracy(model, X, y, num_classes):
    """Accuracy on each class, as a list indexed by label (NaN for an absent class)."""
    predicted = predict_logits(model, X).argmax(dim=1)
    values = []
    for label in range(num_classes):
        mask = y == label
        values.append((predicted[mask] == label).float().mean().item() if mask.any() else math.nan)
    return values


def _run_one(sweep, dataset, config, progress):
    result = train(dataset, config, progress=progress)
    return {
        "key": settings_key(sweep.settings_of(config)),
        "kind": "train",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "settings": {
            **sweep.settings_of(config),
            "n_train": len(dataset.y_train),
            "n_test": len(dataset.y_test),
            "sample_rate": result.sample_rate,
            "steps": result.steps,
            "noise_multiplier_used": result.noise_multiplier,
            "private": config.private,
        },
        "results": {
            "epsilon": result.epsilon,
            "delta": result.delta,
            "accountant": result.accountant,
            "test_accuracy": result.test_accuracy,
            "train_accuracy": result.train_accuracy,
            "per_class_accuracy": per_class_accuracy(result.model, dataset.X_test, dataset.y_test, dataset.num_classes),
            "history": result.history,
            "seconds": result.seconds,
        },
    }, result


def run_sweep(sweep, store, *, progress=True, on_result=None):
    """Run every run of ``sweep`` that ``store`` does not hold yet.

    Parameters
    ----------
    sweep : Sweep
    store : ResultStore or path
    progress : bool, default True
        Show progress bars over runs and epochs.
    on_result : callable, optional
        Called as ``on_result(record, train_result)`` after each new run, before
        its record is stored; it may add entries to ``record["results"]``.

    Returns
    -------
    list of dict
        The records of all runs of the sweep, in sweep order.
    """
    if not isinstance(sweep, Sweep):
        raise invalid("sweep", "a dpkit.experiments.Sweep", type(sweep).__name__, "Build one with Sweep(...).")
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    configs = sweep.runs()
    dataset = datasets.load(sweep.dataset, seed=sweep.split_seed)
    keys = [settings_key(sweep.settings_of(config)) for config in configs]
    todo = [(key, config) for key, config in zip(keys, configs) if key not in store]
    logger.info("sweep: %d runs, %d stored, %d to run", len(configs), len(configs) - len(todo), len(todo))

    attack_context = _prepare_attacks(sweep, dataset, store, progress) if sweep.attacks and todo else None
    started = time.perf_counter()
    for key, config in tqdm(todo, desc="sweep", unit="run", disable=not progress):
        record, result = _run_one(sweep, dataset, config, progress)
        if attack_context is not None:
            record["results"]["attacks"] = _attack(result, record, attack_context, sweep)
        if on_result is not None:
            on_result(record, result)
        store.append(record)
        logger.info(
            "run %s: target_epsilon=%s seed=%d test_accuracy=%.4f epsilon=%s",
            key, config.target_epsilon, config.seed, record["results"]["test_accuracy"], record["results"]["epsilon"],
        )
    logger.info("sweep finished in %.1f s", time.perf_counter() - started)
    return [store.get(key) for key in keys]


def _prepare_attacks(sweep, dataset, store, progress):
    """Load or train the reference bank and choose the queried candidates.

    The pool is the whole dataset (train and test splits); every pool example
    trains exactly half of the reference models. The candidates are
    ``n_attack_members`` training members of the target and every test example
    as a non-member.
    """
    from dpkit.attacks import ReferenceBank

    if sweep.n_attack_members > len(dataset.y_train):
        raise invalid(
            "n_attack_members", f"at most the train split's {len(dataset.y_train)} examples",
            sweep.n_attack_members, "Query fewer members.",
        )
    X_pool = torch.cat([dataset.X_train, dataset.X_test])
    y_pool = torch.cat([dataset.y_train, dataset.y_test])
    rng = np.random.default_rng(sweep.attack_seed)
    members = np.sort(rng.choice(len(dataset.y_train), size=sweep.n_attack_members, replace=False))
    non_members = np.arange(len(dataset.y_train), len(y_pool))
    index = np.concatenate([members, non_members])
    is_member = np.concatenate([np.ones(len(members), bool), np.zeros(len(non_members), bool)])

    bank_key = settings_key({"dataset": sweep.dataset, "split_seed": sweep.split_seed, **sweep.attack_settings()})
    bank_path = os.path.join(os.path.dirname(os.path.abspath(store.path)), f"bank-{bank_key}.npz")
    bank = None
    if os.path.exists(bank_path):
        try:
            bank = ReferenceBank.load(bank_path)
            logger.info("loaded reference bank %s", bank_path)
        except (ValueError, OSError, KeyError) as error:
            warnings.warn(f"reference bank {bank_path} could not be read ({error}); it is trained again.", DPKitWarning, stacklevel=3)
    if bank is None:
        logger.info("training a reference bank of %d models", sweep.bank_size)
        bank = ReferenceBank.train(
            X_pool, y_pool, n_models=sweep.bank_size, config=sweep.bank, seed=sweep.attack_seed, progress=progress
        )
        bank.save(bank_path)
    return {"bank": bank, "X_pool": X_pool, "y_pool": y_pool, "index": index, "is_member": is_member, "bank_path": bank_path}


def _downsample_roc(fpr, tpr, points=200):
    """Keep the ROC's shape on log axes with at most about ``points`` points."""
    if len(fpr) <= points:
        return fpr, tpr
    grid = np.unique(np.concatenate([[0.0], np.logspace(-5, 0, points)]))
    positions = np.searchsorted(fpr, grid, side="right") - 1
    positions = np.unique(np.clip(positions, 0, len(fpr) - 1))
    return fpr[positions], tpr[positions]


def _attack(result, record, context, sweep):
    """Run the sweep's attacks on one target and summarise them for its record."""
    from dpkit import audit
    from dpkit.attacks import run_attacks

    outcomes = run_attacks(
        result.model,
        bank=context["bank"],
        X_pool=context["X_pool"],
        y_pool=context["y_pool"],
        index=context["index"],
        is_member=context["is_member"],
        attacks=sweep.attacks,
    )
    summaries = {}
    for name, outcome in outcomes.items():
        fpr, tpr, _ = outcome.roc()
        fpr, tpr = _downsample_roc(np.asarray(fpr), np.asarray(tpr))
        # The threshold is chosen on one half of the candidates and evaluated on the
        # other half, so the bound is not optimistic.
        bound = audit.epsilon_lower_bound(outcome.is_member, outcome.scores, delta=sweep.delta, method="split", seed=sweep.attack_seed)
        summaries[name] = {
            "auc": outcome.auc(),
            "tpr_at_0.1pct_fpr": outcome.tpr_at_fpr(0.001),
            "tpr_at_1pct_fpr": outcome.tpr_at_fpr(0.01),
            "advantage": outcome.advantage(),
            "epsilon_lower_bound": bound.epsilon,
            "epsilon_lower_bound_confidence": bound.confidence,
            "n_members": int(outcome.is_member.sum()),
            "n_non_members": int((~outcome.is_member).sum()),
            "settings": {k: v for k, v in outcome.settings.items() if isinstance(v, (str, int, float, bool)) or v is None},
            "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
        }
    return summaries


def results_table(records):
    """Summarise records per privacy level: epsilon with its delta and accountant, accuracy mean and std.

    Returns
    -------
    pandas.DataFrame
        One row per target epsilon (``inf`` for the non-private baseline), sorted
        from most private to non-private.
    """
    rows = []
    for record in records:
        settings, results = record["settings"], record["results"]
        target = settings.get("target_epsilon")
        row = {
            "target_epsilon": math.inf if target is None else float(target),
            "seed": settings["seed"],
            "epsilon": number(results["epsilon"]),
            "delta": results.get("delta"),
            "accountant": results.get("accountant") or "none",
            "test_accuracy": number(results["test_accuracy"]),
        }
        for name, attack in (results.get("attacks") or {}).items():
            row[f"{name}_auc"] = number(attack.get("auc"))
            row[f"{name}_tpr_at_1pct_fpr"] = number(attack.get("tpr_at_1pct_fpr"))
            if "epsilon_lower_bound" in attack:
                row[f"{name}_epsilon_lower_bound"] = number(attack["epsilon_lower_bound"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    aggregations = {
        "epsilon": ("epsilon", "max"),
        "delta": ("delta", "first"),
        "accountant": ("accountant", "first"),
        "seeds": ("seed", "count"),
        "accuracy_mean": ("test_accuracy", "mean"),
        "accuracy_std": ("test_accuracy", "std"),
    }
    for column in frame.columns:
        if column.endswith(("_auc", "_tpr_at_1pct_fpr")):
            aggregations[column] = (column, "mean")
        elif column.endswith("_epsilon_lower_bound"):
            # Each seed's bound is valid with 95% confidence, and so is the smallest of them.
            # The largest would be an optimistic pick among several tries.
            aggregations[column] = (column, "min")
    table = frame.groupby("target_epsilon", sort=True).agg(**aggregations).reset_index()
    return table
