"""One training loop for private (DP-SGD through Opacus) and non-private models.

A private run uses Opacus's ``PrivacyEngine`` with Poisson sampling, per-sample
clipping to ``max_grad_norm`` and Gaussian noise of standard deviation
``noise_multiplier * max_grad_norm``. Logical batches larger than memory are
split into physical batches by Opacus's ``BatchMemoryManager``; the privacy
accountant counts logical steps only.
"""

import copy
import dataclasses
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import torch
from opacus import PrivacyEngine
from opacus.utils.batch_memory_manager import BatchMemoryManager
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dpkit import privacy
from dpkit._checks import (
    DPKitWarning,
    check_choice,
    check_int,
    check_non_negative,
    check_open_unit,
    check_positive,
    invalid,
)
from dpkit.data import Dataset
from dpkit.models import MODELS, make_model, make_private_compatible

logger = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "adam")
GRAD_SAMPLE_MODES = ("hooks", "functorch", "ghost")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    A run is private when ``target_epsilon`` or ``noise_multiplier`` is set (never
    both), and non-private when neither is.

    Attributes
    ----------
    model : {"cnn", "mlp", "logreg"}
        Built-in model, used unless ``train`` receives a model.
    epochs : int
        Passes over the training data.
    batch_size : int
        Logical batch size. Private runs sample each example with probability
        ``sample_rate = 1 / ceil(n / batch_size)`` per step (Poisson sampling), so
        ``batch_size`` is the expected size.
    lr, optimizer, momentum, weight_decay
        Optimizer settings (``"sgd"`` with momentum, or ``"adam"``).
    target_epsilon : float, optional
        Privacy budget; the noise multiplier is the smallest one whose epsilon after
        all steps does not exceed it.
    noise_multiplier : float, optional
        Noise standard deviation over ``max_grad_norm`` (sigma).
    max_grad_norm : float
        Per-sample clipping norm (C), in the L2 norm of the flattened gradient.
    delta : float
        Target delta of the (epsilon, delta) guarantee.
    accountant : {"rdp", "prv", "gdp"}
    max_physical_batch_size : int
        Largest batch pushed through the model at once; memory, not privacy.
    grad_sample_mode : {"hooks", "functorch", "ghost"}
        How Opacus computes per-sample gradients (or their norms, for ghost
        clipping). All three give the same clipped, noised update.
    seed : int
        Seeds model initialisation, sampling and noise.
    """

    model: str = "cnn"
    epochs: int = 10
    batch_size: int = 256
    lr: float = 0.1
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    target_epsilon: float | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    accountant: str = "rdp"
    max_physical_batch_size: int = 512
    grad_sample_mode: str = "hooks"
    seed: int = 0

    @property
    def private(self):
        """True when the run uses DP-SGD."""
        return self.target_epsilon is not None or self.noise_multiplier is not None

    def replace(self, **changes):
        """Return a copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    def validate(self, n_train=None):
        """Check every setting; raise ``ValueError`` naming the first bad one."""
        check_choice("model", self.model, MODELS)
        check_int("epochs", self.epochs, "Train for at least 1 epoch.")
        check_int("batch_size", self.batch_size, "Use a batch size of at least 1.")
        if n_train is not None and self.batch_size > n_train:
            raise invalid(
                "batch_size",
                f"at most the number of training examples ({n_train})",
                self.batch_size,
                f"Use batch_size <= {n_train}.",
            )
        check_positive("lr", self.lr, "Use a positive learning rate such as 0.1.")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum < 1:
            raise invalid("momentum", "in [0, 1)", self.momentum, "Use a momentum such as 0.9, or 0 for plain SGD.")
        check_non_negative("weight_decay", self.weight_decay, "Use 0 or a small positive weight decay.")
        if self.target_epsilon is not None and self.noise_multiplier is not None:
            raise ValueError(
                f"exactly one of target_epsilon or noise_multiplier may be set, got target_epsilon="
                f"{self.target_epsilon!r} and noise_multiplier={self.noise_multiplier!r}. Keep one and set "
                "the other to None."
            )
        if self.target_epsilon is not None:
            check_positive("target_epsilon", self.target_epsilon, "Pass a privacy budget greater than 0, e.g. 1.0.")
        if self.noise_multiplier is not None:
            check_non_negative("noise_multiplier", self.noise_multiplier, "Use a noise multiplier >= 0.")
        check_positive("max_grad_norm", self.max_grad_norm, "Use a positive clipping norm, e.g. 1.0.")
        check_open_unit("delta", self.delta, "Use a delta well below 1/n, e.g. 1e-5.")
        if n_train is not None and self.private and self.delta >= 1 / n_train:
            warnings.warn(
                f"delta={self.delta} is at least 1/n = 1/{n_train}: a mechanism that publishes one whole "
                f"random record satisfies this delta. Use delta < {1 / n_train:.2g}.",
                DPKitWarning,
                stacklevel=3,
            )
        check_choice("accountant", self.accountant, privacy.ACCOUNTANTS)
        check_int("max_physical_batch_size", self.max_physical_batch_size, "Use at least 1.")
        check_choice("grad_sample_mode", self.grad_sample_mode, GRAD_SAMPLE_MODES)
        check_int("seed", self.seed, "Pass a non-negative integer seed.", minimum=0)
        return self


@dataclass
class TrainResult:
    """A trained model with the history and privacy guarantee of its run.

    ``epsilon`` is ``inf`` for a non-private run; it always holds for ``delta``
    under ``accountant``.
    """

    model: nn.Module
    config: TrainConfig
    history: list = field(default_factory=list)
    epsilon: float = math.inf
    delta: float | None = None
    accountant: str | None = None
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    steps: int = 0
    train_accuracy: float = math.nan
    test_accuracy: float = math.nan
    seconds: float = 0.0

    def summary(self):
        """Flat dict of the settings and results, for tables and records."""
        return {
            **dataclasses.asdict(self.config),
            "private": self.config.private,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "accountant": self.accountant,
            "noise_multiplier_used": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
        }


def default_device():
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def predict_logits(model, X, *, batch_size=1024):
    """Return the model's logits for ``X`` on the CPU, computed in eval mode in batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs = [model(X[i : i + batch_size].to(device)).cpu() for i in range(0, len(X), batch_size)]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0)


def evaluate(model, X, y, *, batch_size=1024):
    """Return mean cross-entropy loss and accuracy of ``model`` on ``(X, y)``."""
    if len(X) != len(y):
        raise invalid("y", f"as long as X ({len(X)} examples)", len(y), "Pass matching features and labels.")
    if len(X) == 0:
        return {"loss": math.nan, "accuracy": math.nan}
    logits = predict_logits(model, X, batch_size=batch_size)
    y = torch.as_tensor(y)
    return {
        "loss": nn.functional.cross_entropy(logits, y).item(),
        "accuracy": (logits.argmax(dim=1) == y).float().mean().item(),
    }


def _split_data(data, test):
    if isinstance(data, Dataset):
        return data.X_train, data.y_train, (data.X_test, data.y_test) if test is None else test, data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = (torch.as_tensor(part) for part in data)
        if len(X) != len(y):
            raise invalid("data", "(X, y) with as many labels as examples", f"{len(X)} examples, {len(y)} labels", "Pass matching X and y.")
        if len(X) == 0:
            raise invalid("data", "a non-empty (X, y)", "0 examples", "Pass at least one training example.")
        return X.float(), y.long(), test, None
    raise invalid("data", "a dpkit.data.Dataset or a tuple (X, y)", type(data).__name__, "Load data with dpkit.data.load(name).")


def _make_optimizer(model, config):
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def _atomic_save(obj, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load_checkpoint(path):
    """Load a checkpoint written by :func:`train` (``weights_only=True``, so no code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def train(data, config=None, *, model=None, test=None, progress=True, checkpoint=None, device=None, history=True):
    """Train a model, privately or not, and record a per-epoch history.

    Parameters
    ----------
    data : Dataset or tuple (X, y)
        Training data. A ``Dataset`` also provides the test split.
    config : TrainConfig, optional
        Defaults to ``TrainConfig()`` (non-private).
    model : torch.nn.Module, optional
        A model of your own. It is not modified: training works on a copy,
        which private runs first make Opacus-compatible (with a ``DPKitWarning``
        listing changes). Defaults to ``make_model(config.model)``.
    test : tuple (X, y), optional
        Test data, overriding the dataset's test split.
    progress : bool, default True
        Show a tqdm progress bar over epochs.
    checkpoint : str or path, optional
        File written atomically after every epoch. If it exists and holds a run
        with the same settings, training resumes from it, and epsilon continues
        from the stored accountant state.
    device : str or torch.device, optional
        Defaults to CUDA when available, else CPU.
    history : bool, default True
        Evaluate train and test accuracy and epsilon after every epoch. False
        evaluates after the last epoch only, which saves a pass over the data per
        epoch (reference banks train many models and need no history).

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> from dpkit.data import load
    >>> config = TrainConfig(epochs=2, batch_size=256, lr=2.0, max_grad_norm=0.1, noise_multiplier=1.0)
    >>> result = train(load("digits"), config, progress=False)
    >>> result.epsilon < 10 and result.accountant == "rdp"
    True
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise invalid("config", "a dpkit.training.TrainConfig", type(config).__name__, "Build one with TrainConfig(...).")
    X, y, test, dataset = _split_data(data, test)
    config.validate(n_train=len(X))
    device = torch.device(device) if device is not None else default_device()
    started = time.perf_counter()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if model is None:
            num_classes = dataset.num_classes if dataset is not None else int(y.max()) + 1
            model = make_model(config.model, input_shape=tuple(X.shape[1:]), num_classes=num_classes)
        elif config.private:
            model = make_private_compatible(model)
        else:
            # Training works on a copy, so the caller's model keeps its weights.
            model = copy.deepcopy(model)
        model = model.to(device)
        loader = DataLoader(TensorDataset(X, y), batch_size=config.batch_size, shuffle=True)
        batches_per_epoch = len(loader)
        optimizer = _make_optimizer(model, config)
        criterion = nn.CrossEntropyLoss()

        engine = None
        noise_multiplier = sample_rate = None
        if config.private:
            sample_rate = 1 / batches_per_epoch
            noise_multiplier = config.noise_multiplier
            if noise_multiplier is None:
                noise_multiplier = privacy.noise_multiplier_for(
                    target_epsilon=config.target_epsilon,
                    sample_rate=sample_rate,
                    steps=config.epochs * batches_per_epoch,
                    delta=config.delta,
                    accountant=config.accountant,
                )
            with warnings.catch_warnings():
                # Opacus warns that its secure RNG is off (dpkit seeds runs on purpose) and that
                # its gdp accountant is experimental (dpkit.privacy warns about that itself).
                warnings.simplefilter("ignore", UserWarning)
                engine = PrivacyEngine(accountant=config.accountant)
                wrapped = engine.make_private(
                    module=model,
                    optimizer=optimizer,
                    criterion=criterion,
                    data_loader=loader,
                    noise_multiplier=noise_multiplier,
                    max_grad_norm=config.max_grad_norm,
                    poisson_sampling=True,
                    grad_sample_mode=config.grad_sample_mode,
                )
            if config.grad_sample_mode == "ghost":
                train_model, optimizer, criterion, loader = wrapped
            else:
                train_model, optimizer, loader = wrapped
        else:
            train_model = model

        rows, first_epoch = _resume(checkpoint, config, model, optimizer, engine)
        epochs = range(first_epoch, config.epochs + 1)
        bar = tqdm(epochs, desc="DP-SGD" if config.private else "SGD", unit="epoch", disable=not progress, leave=False)
        for epoch in bar:
            loss = _train_epoch(train_model, optimizer, criterion, loader, config, device, engine)
            row = {"epoch": epoch, "loss": loss}
            if history or epoch == config.epochs:
                row["train_accuracy"] = evaluate(model, X, y)["accuracy"]
                row["test_accuracy"] = evaluate(model, *test)["accuracy"] if test is not None else math.nan
                row["epsilon"] = _spent(engine, config, noise_multiplier)
                bar.set_postfix(loss=f"{loss:.3f}", test=f"{row['test_accuracy']:.3f}", eps=f"{row['epsilon']:.2f}")
            rows.append(row)
            logger.info("epoch %d: %s", epoch, row)
            if checkpoint is not None:
                _save(checkpoint, config, model, optimizer, engine, rows, epoch)
        bar.close()

    model.eval()
    last = rows[-1] if rows else {}
    return TrainResult(
        model=model,
        config=config,
        history=rows,
        epsilon=_spent(engine, config, noise_multiplier),
        delta=config.delta if config.private else None,
        accountant=config.accountant if config.private else None,
        noise_multiplier=noise_multiplier,
        sample_rate=sample_rate,
        steps=_accounted_steps(engine) if engine is not None else config.epochs * batches_per_epoch,
        train_accuracy=last.get("train_accuracy", math.nan),
        test_accuracy=last.get("test_accuracy", math.nan),
        seconds=time.perf_counter() - started,
    )


def _train_epoch(model, optimizer, criterion, loader, config, device, engine):
    model.train()
    total, count = 0.0, 0
    if engine is not None:
        context = BatchMemoryManager(
            data_loader=loader, max_physical_batch_size=config.max_physical_batch_size, optimizer=optimizer
        )
    else:
        context = _NullContext(loader)
    with context as batches, warnings.catch_warnings():
        # Opacus's hooks trigger this torch warning when the input does not require grad, as is normal.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        for features, labels in batches:
            features, labels = features.to(device), labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            if len(labels) == 0:
                # An empty Poisson batch still takes a step: Opacus adds pure noise and
                # the accountant counts it, as the privacy analysis assumes.
                output = model(features)
                loss = (output.sum() * 0.0) if config.grad_sample_mode != "ghost" else criterion(output, labels)
            else:
                loss = criterion(model(features), labels)
            loss.backward()
            optimizer.step()
            if len(labels):
                total += loss.item() * len(labels)
                count += len(labels)
    return total / count if count else math.nan


class _NullContext:
    def __init__(self, loader):
        self.loader = loader

    def __enter__(self):
        return self.loader

    def __exit__(self, *exc):
        return False


def _accounted_steps(engine):
    # Opacus's accountants merge consecutive steps with the same (sigma, q) into one
    # history entry (sigma, q, steps), so len(accountant) counts entries, not steps.
    return sum(entry[2] for entry in engine.accountant.history)


def _spent(engine, config, noise_multiplier):
    if engine is None:
        return math.inf
    steps = _accounted_steps(engine)
    if steps == 0:
        return 0.0
    sample_rate = engine.accountant.history[-1][1]
    return privacy._accountant_epsilon(config.accountant, noise_multiplier, sample_rate, steps, config.delta)


def _save(path, config, model, optimizer, engine, history, epoch):
    state = {
        "config": dataclasses.asdict(config),
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": getattr(optimizer, "original_optimizer", optimizer).state_dict(),
        "accountant": engine.accountant.state_dict() if engine is not None else None,
        "history": history,
        "rng": torch.get_rng_state(),
    }
    _atomic_save(state, path)


def _resume(path, config, model, optimizer, engine):
    if path is None or not os.path.exists(path):
        return [], 1
    state = load_checkpoint(path)
    stored = state["config"]
    if stored != dataclasses.asdict(config):
        changed = sorted(k for k in stored if stored[k] != dataclasses.asdict(config).get(k))
        raise ValueError(
            f"checkpoint {path} was written with other settings ({', '.join(changed)} differ). "
            "Delete it, or pass another checkpoint path, to start afresh."
        )
    model.load_state_dict(state["model"], strict=True)
    getattr(optimizer, "original_optimizer", optimizer).load_state_dict(state["optimizer"])
    if engine is not None:
        engine.accountant.load_state_dict(state["accountant"])
    torch.set_rng_state(state["rng"])
    logger.info("resumed %s after epoch %d", path, state["epoch"])
    return list(state["history"]), state["epoch"] + 1
