"""A bank of reference models, trained once and shared by LiRA and RMIA.

Reference models (also called shadow models) are trained like the target, on
random halves of a data pool, so that an attack can see how a model behaves on
an example with and without that example in its training set. The bank keeps
only what the attacks need from each model: two numbers per pool example.
"""

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

import dpkit
from dpkit._checks import check_int, invalid
from dpkit.attacks import _signals
from dpkit.attacks._validation import as_features, as_labels
from dpkit.models import make_model
from dpkit.training import TrainConfig, train

logger = logging.getLogger(__name__)

_FORMAT = "dpkit.ReferenceBank"
_FORMAT_VERSION = 1
_ARRAYS = ("phi", "true_class_probability", "in_mask", "y_pool", "model_seeds", "seconds", "in_accuracy", "out_accuracy")


def balanced_assignment(n_pool, n_models, seed):
    """Draw the membership matrix of a bank: ``(n_models, n_pool)`` booleans.

    Models come in complementary pairs: model ``2m`` trains on a random half of
    the pool and model ``2m + 1`` on the other half. Every pool example is
    therefore a member of exactly one model per pair, so of exactly
    ``n_models / 2`` models, and every even-length prefix of the bank is balanced
    the same way. With an odd ``n_pool`` the second model of a pair gets the extra
    example.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    in_mask = np.zeros((n_models, n_pool), dtype=bool)
    for pair in range(n_models // 2):
        first_half = rng.permutation(n_pool)[: n_pool // 2]
        in_mask[2 * pair, first_half] = True
        in_mask[2 * pair + 1] = ~in_mask[2 * pair]
    return in_mask


def _model_seeds(seed, n_models):
    # One training seed per model, drawn apart from the assignment's stream.
    return np.random.SeedSequence([seed, 1]).generate_state(n_models).astype(np.int64) % (2**31)


def pool_fingerprint(X, y):
    """Hash the pool's features (as float32) and labels with SHA-256, to match a pool with its bank."""
    digest = hashlib.sha256()
    features = np.ascontiguousarray(torch.as_tensor(X, dtype=torch.float32).numpy())
    digest.update(str(features.shape).encode())
    digest.update(features.tobytes())
    digest.update(np.ascontiguousarray(np.asarray(y, dtype=np.int64)).tobytes())
    return digest.hexdigest()


def _build_model(config, model_fn, input_shape, num_classes, seed):
    if model_fn is None:
        return make_model(config.model, input_shape=input_shape, num_classes=num_classes, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_fn()
    if not isinstance(model, nn.Module):
        raise invalid("model_fn", "a callable that returns a torch.nn.Module", type(model).__name__, "Return a fresh, untrained model.")
    return model


@dataclasses.dataclass(eq=False, repr=False)
class ReferenceBank:
    """Per-example outputs of ``n_models`` reference models trained on halves of a pool.

    Build one with :meth:`ReferenceBank.train`, store it with :meth:`save` and
    read it back with :meth:`ReferenceBank.load`. ``len(bank)`` is the number of
    reference models.

    Attributes
    ----------
    phi : numpy.ndarray of float64, shape (n_models, n_pool)
        Logit-scaled confidence ``log(p_y / (1 - p_y))`` of each model on each pool
        example (LiRA's statistic).
    true_class_probability : numpy.ndarray of float64, shape (n_models, n_pool)
        Softmax probability ``p_y`` of the true class (RMIA's statistic).
    in_mask : numpy.ndarray of bool, shape (n_models, n_pool)
        ``in_mask[m, i]`` is True when pool example ``i`` trained model ``m``.
        Every example is a member of exactly half of the models, and of exactly
        one model of each pair ``(2m, 2m + 1)`` (see :func:`balanced_assignment`).
    y_pool : numpy.ndarray of int64, shape (n_pool,)
        Labels of the pool.
    pool_fingerprint : str
        SHA-256 of the pool; attacks check that they receive the same pool.
    config : TrainConfig
        Training settings of every reference model (the seed varies per model).
    seed : int
        Seed of the assignment and of the per-model training seeds.
    model_seeds : numpy.ndarray of int64, shape (n_models,)
        Training seed of each model.
    seconds : numpy.ndarray of float64, shape (n_models,)
        Wall-clock seconds per model: training plus scoring the pool. For a
        vectorised bank, the total divided by ``n_models``.
    in_accuracy, out_accuracy : numpy.ndarray of float64, shape (n_models,)
        Accuracy of each model on its training half and on the other half.
    vectorized : bool
        Whether the models were trained all at once (see :meth:`train`).
    model : str
        The architecture: ``config.model``, or the class name returned by ``model_fn``.
    """

    phi: np.ndarray
    true_class_probability: np.ndarray
    in_mask: np.ndarray
    y_pool: np.ndarray
    pool_fingerprint: str
    config: TrainConfig
    seed: int
    model_seeds: np.ndarray
    seconds: np.ndarray
    in_accuracy: np.ndarray
    out_accuracy: np.ndarray
    vectorized: bool = False
    model: str = ""

    def __len__(self):
        return self.in_mask.shape[0]

    def __repr__(self):
        return (
            f"ReferenceBank(n_models={len(self)}, n_pool={self.n_pool}, model={self.model!r}, "
            f"seconds_per_model={self.seconds.mean():.2f}, vectorized={self.vectorized})"
        )

    @property
    def n_pool(self):
        """Number of pool examples."""
        return self.in_mask.shape[1]

    def settings(self):
        """Return the settings that produced the bank, as a JSON-ready dict."""
        return {
            "n_models": len(self),
            "n_pool": self.n_pool,
            "seed": self.seed,
            "model": self.model,
            "vectorized": self.vectorized,
            "config": dataclasses.asdict(self.config),
            "pool_fingerprint": self.pool_fingerprint,
            "seconds_per_model": float(self.seconds.mean()),
            "in_accuracy": float(self.in_accuracy.mean()),
            "out_accuracy": float(self.out_accuracy.mean()),
        }

    # ------------------------------------------------------------------
    # training

    @classmethod
    def train(
        cls,
        X_pool,
        y_pool,
        *,
        n_models,
        config,
        seed=0,
        progress=True,
        model_fn=None,
        vectorized=False,
        device=None,
    ):
        """Train ``n_models`` reference models on halves of a pool and keep their per-example outputs.

        Parameters
        ----------
        X_pool : tensor or array of shape (n_pool, ...)
            The data the attacker can train on. For LiRA and RMIA it must contain
            the candidates whose membership is queried, because the online attack
            needs models trained with and without each candidate.
        y_pool : array_like of int, shape (n_pool,)
        n_models : int
            Even and >= 2. Each pool example trains exactly ``n_models / 2`` models.
        config : TrainConfig
            How each model is trained, ideally the target's recipe. Each model
            gets its own seed derived from ``seed``. ``config.batch_size`` must fit
            in half of the pool.
        seed : int, default 0
            Seeds the assignment of examples to models and every model's training.
            The same seed gives the same assignment and, on CPU, the same bank.
        progress : bool, default True
            Show a progress bar over models (over epochs when ``vectorized``).
        model_fn : callable, optional
            ``model_fn()`` returns a fresh untrained model, for architectures other
            than the built-in ones. It is called under a seeded torch generator.
            Defaults to ``make_model(config.model, ...)`` with the number of classes
            in ``y_pool``.
        vectorized : bool, default False
            Train all models at once with ``torch.func`` (``vmap`` over stacked
            parameters), which is faster for small models. Only for non-private
            SGD configs and models without buffers (no BatchNorm). Each model
            trains on its half once per epoch, in its own random order and in
            full batches, so the bank is statistically like, not equal to, the
            one trained model by model.
        device : str or torch.device, optional
            Defaults to CUDA when available, else CPU.

        Returns
        -------
        ReferenceBank

        Examples
        --------
        >>> from dpkit.data import load
        >>> from dpkit.training import TrainConfig
        >>> ds = load("digits")
        >>> config = TrainConfig(model="mlp", epochs=5, batch_size=64)
        >>> bank = ReferenceBank.train(ds.X_train, ds.y_train, n_models=4, config=config, progress=False)
        >>> len(bank), bank.phi.shape
        (4, (4, 1437))
        >>> bool((bank.in_mask.sum(axis=0) == 2).all())
        True
        """
        X = as_features("X_pool", X_pool)
        y = as_labels("y_pool", y_pool, len(X), x_name="X_pool")
        n_models = check_int("n_models", n_models, "Use an even number of reference models such as 8 or 16.", minimum=2)
        if n_models % 2:
            raise invalid(
                "n_models",
                "an even integer >= 2",
                n_models,
                f"Use {n_models + 1} or {n_models - 1}: models come in pairs so that every example trains exactly half of them.",
            )
        if not isinstance(config, TrainConfig):
            raise invalid("config", "a dpkit.training.TrainConfig", type(config).__name__, "Pass the target's training settings.")
        if len(X) < 2:
            raise invalid("X_pool", "at least 2 examples", len(X), "Each reference model trains on half of the pool.")
        config.validate(n_train=len(X) // 2)
        seed = check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
        if model_fn is not None and not callable(model_fn):
            raise invalid("model_fn", "a callable that returns a fresh model", type(model_fn).__name__, "Pass e.g. lambda: MyNet().")

        in_mask = balanced_assignment(len(X), n_models, seed)
        model_seeds = _model_seeds(seed, n_models)
        num_classes = max(int(y.max()) + 1, 2)
        models = [_build_model(config, model_fn, tuple(X.shape[1:]), num_classes, int(s)) for s in model_seeds]
        description = config.model if model_fn is None else type(models[0]).__name__
        logger.info(
            "training %d reference models (%s) on halves of a pool of %d examples%s",
            n_models, description, len(X), ", vectorised" if vectorized else "",
        )

        if vectorized:
            from dpkit.attacks._vectorized import train_stacked

            logits, total_seconds = train_stacked(models, X, y, in_mask, config, seed=seed, device=device, progress=progress)
            per_model = [(logits[m], total_seconds / n_models) for m in range(n_models)]
        else:
            per_model = _train_one_by_one(models, X, y, in_mask, config, model_seeds, device, progress)

        labels = torch.as_tensor(y)
        phi = np.empty((n_models, len(X)))
        probability = np.empty((n_models, len(X)))
        seconds = np.empty(n_models)
        in_accuracy = np.empty(n_models)
        out_accuracy = np.empty(n_models)
        for m, (model_logits, model_seconds) in enumerate(per_model):
            phi[m] = _signals.logit_confidence(model_logits, labels)
            probability[m] = _signals.true_class_probability(model_logits, labels)
            correct = model_logits.argmax(dim=1).numpy() == y
            in_accuracy[m] = correct[in_mask[m]].mean()
            out_accuracy[m] = correct[~in_mask[m]].mean()
            seconds[m] = model_seconds

        bank = cls(
            phi=phi,
            true_class_probability=probability,
            in_mask=in_mask,
            y_pool=y,
            pool_fingerprint=pool_fingerprint(X, y),
            config=config,
            seed=seed,
            model_seeds=model_seeds,
            seconds=seconds,
            in_accuracy=in_accuracy,
            out_accuracy=out_accuracy,
            vectorized=bool(vectorized),
            model=description,
        )
        logger.info(
            "reference bank ready: %.2f s per model, accuracy %.3f on training halves and %.3f on held-out halves",
            seconds.mean(), in_accuracy.mean(), out_accuracy.mean(),
        )
        return bank

    # ------------------------------------------------------------------
    # checks used by the attacks

    def _check_pool(self, X_pool, y_pool):
        """Check that ``(X_pool, y_pool)`` is the pool the bank was trained on; return them converted."""
        X = as_features("X_pool", X_pool)
        y = as_labels("y_pool", y_pool, len(X), x_name="X_pool")
        if len(X) != self.n_pool:
            raise invalid(
                "X_pool", f"the bank's pool of {self.n_pool} examples", f"{len(X)} examples", "Pass the pool the bank was trained on."
            )
        if pool_fingerprint(X, y) != self.pool_fingerprint:
            raise invalid(
                "X_pool",
                "the pool the bank was trained on (same features, labels and order)",
                "a pool with other contents",
                "Pass the X_pool and y_pool given to ReferenceBank.train, in the same order.",
            )
        return X, y

    def _reference_count(self, n_reference, *, minimum=1, even=False):
        """Resolve ``n_reference`` (None means the whole bank) and check it against the bank."""
        if n_reference is None:
            return len(self)
        fix = f"Use between {minimum} and {len(self)} reference models."
        count = check_int("n_reference", n_reference, fix, minimum=minimum)
        if count > len(self):
            raise invalid(
                "n_reference",
                f"at most the {len(self)} reference models in the bank",
                count,
                f"Ask for at most {len(self)}, or train a larger bank with ReferenceBank.train(..., n_models={count + count % 2}).",
            )
        if even and count % 2:
            raise invalid(
                "n_reference",
                "an even number",
                count,
                "Every example needs as many IN as OUT models, and the bank's pairs give that only for even prefixes.",
            )
        return count

    # ------------------------------------------------------------------
    # storage

    def save(self, path):
        """Write the bank to one ``.npz`` file, atomically (a temporary file, then ``os.replace``).

        The arrays are stored as they are, and the settings (config, seeds,
        fingerprint, versions) as a JSON string inside the same file, so the file
        loads without pickle.
        """
        settings = {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "pool_fingerprint": self.pool_fingerprint,
            "config": dataclasses.asdict(self.config),
            "seed": self.seed,
            "vectorized": self.vectorized,
            "model": self.model,
            "dpkit": dpkit.__version__,
            "torch": torch.__version__,
        }
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        arrays["settings_json"] = np.array(json.dumps(settings))

        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **arrays)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        logger.info("saved reference bank of %d models to %s", len(self), path)

    @classmethod
    def load(cls, path):
        """Read a bank written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            When ``path`` does not exist.
        ValueError
            When the file is damaged or is not a saved bank.
        """
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in _ARRAYS}
                settings = json.loads(str(stored["settings_json"]))
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as error:
            raise ValueError(
                f"{path} is not a readable ReferenceBank file ({type(error).__name__}: {error}). "
                "Train the bank again with ReferenceBank.train and save it."
            ) from None
        if settings.get("format") != _FORMAT or settings.get("format_version") != _FORMAT_VERSION:
            raise ValueError(
                f"{path} contains format {settings.get('format')!r} version {settings.get('format_version')!r}, "
                f"expected {_FORMAT!r} version {_FORMAT_VERSION}. Train the bank again with this dpkit version."
            )
        try:
            config = TrainConfig(**settings["config"])
        except TypeError as error:
            raise ValueError(
                f"{path} stores training settings that this dpkit's TrainConfig does not accept ({error}). "
                "Train the bank again with this dpkit version."
            ) from None

        n_models, n_pool = arrays["in_mask"].shape
        for name in ("phi", "true_class_probability"):
            if arrays[name].shape != (n_models, n_pool):
                raise ValueError(f"{path} is damaged: {name} has shape {arrays[name].shape}, expected {(n_models, n_pool)}.")
        return cls(
            **arrays,
            pool_fingerprint=settings["pool_fingerprint"],
            config=config,
            seed=int(settings["seed"]),
            vectorized=bool(settings["vectorized"]),
            model=str(settings["model"]),
        )


def _train_one_by_one(models, X, y, in_mask, config, model_seeds, device, progress):
    """Train each model with :func:`dpkit.training.train`; return (logits on the pool, seconds) per model."""
    labels = torch.as_tensor(y)
    outputs = []
    bar = tqdm(range(len(models)), desc="reference models", unit="model", disable=not progress, leave=False)
    for m in bar:
        started = time.perf_counter()
        members = torch.as_tensor(np.flatnonzero(in_mask[m]))
        result = train(
            (X[members], labels[members]),
            config.replace(seed=int(model_seeds[m])),
            model=models[m],
            progress=False,
            device=device,
        )
        logits = _signals.model_logits(result.model, X)
        seconds = time.perf_counter() - started
        outputs.append((logits, seconds))
        logger.info("reference model %d/%d trained in %.2f s", m + 1, len(models), seconds)
    bar.close()
    return outputs
