"""Tests for dpkit.data: the built-in datasets and member / non-member splits."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_digits

from dpkit.data import available, load, membership_split

SHAPES = {
    "mnist-5k": ((1, 28, 28), 10, 4000, 1000),
    "digits": ((1, 8, 8), 10, 1437, 360),
    "breast-cancer": ((30,), 2, 455, 114),
}


@pytest.fixture(scope="module")
def loaded():
    """Every built-in dataset with split seed 0, loaded once for this module."""
    return {name: load(name) for name in SHAPES}


@pytest.fixture(scope="module")
def mnist(loaded):
    return loaded["mnist-5k"]


def test_available_names():
    assert available() == ["breast-cancer", "digits", "mnist-5k"]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_load_shapes_and_dtypes(loaded, name):
    dataset = loaded[name]
    input_shape, num_classes, n_train, n_test = SHAPES[name]

    assert dataset.input_shape == input_shape
    assert dataset.num_classes == num_classes
    assert tuple(dataset.X_train.shape) == (n_train, *input_shape)
    assert tuple(dataset.X_test.shape) == (n_test, *input_shape)
    assert tuple(dataset.y_train.shape) == (n_train,)
    assert tuple(dataset.y_test.shape) == (n_test,)
    assert dataset.X_train.dtype == torch.float32
    assert dataset.X_test.dtype == torch.float32
    assert dataset.y_train.dtype == torch.int64
    assert dataset.y_test.dtype == torch.int64
    assert dataset.metadata["n_train"] == n_train
    assert dataset.metadata["n_test"] == n_test


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_load_metadata_provenance(loaded, name):
    metadata = loaded[name].metadata

    assert metadata["source"]
    assert metadata["licence"]
    assert metadata["name"] == name


def test_mnist_split_per_class(mnist):
    train_counts = torch.bincount(mnist.y_train, minlength=10)
    test_counts = torch.bincount(mnist.y_test, minlength=10)

    assert train_counts.tolist() == [400] * 10
    assert test_counts.tolist() == [100] * 10


@pytest.mark.parametrize("name", ["digits", "breast-cancer"])
def test_split_stratified(loaded, name):
    dataset = loaded[name]
    labels = torch.cat([dataset.y_train, dataset.y_test])
    expected = torch.bincount(labels) * len(dataset.y_test) / len(labels)
    counts = torch.bincount(dataset.y_test, minlength=len(expected))

    # A stratified split rounds each class's expected test count up or down.
    assert torch.max(torch.abs(counts - expected)).item() < 1.0 + 1e-9


def test_mnist_standardised_on_train(mnist):
    assert abs(mnist.X_train.mean().item()) < 1e-4
    assert mnist.X_train.std().item() == pytest.approx(1.0, abs=1e-3)


def test_breast_cancer_standardised_per_feature(breast_cancer):
    X_train = breast_cancer.X_train.numpy().astype(np.float64)

    assert np.abs(X_train.mean(axis=0)).max() < 1e-5
    assert np.abs(X_train.std(axis=0) - 1).max() < 1e-4


def _affine_residual(raw, standardised):
    """Largest gap between sorted ``standardised`` and the best affine map of sorted ``raw``."""
    raw, standardised = np.sort(raw), np.sort(standardised)
    slope, intercept = np.polyfit(raw, standardised, 1)
    return np.abs(slope * raw + intercept - standardised).max()


def test_breast_cancer_test_uses_train_statistics(breast_cancer):
    # Train and test together must be one affine image of the raw data. Had the test
    # split been standardised with its own statistics, no single map would fit both.
    raw = load_breast_cancer().data
    both = torch.cat([breast_cancer.X_train, breast_cancer.X_test]).numpy().astype(np.float64)

    for feature in range(raw.shape[1]):
        assert _affine_residual(raw[:, feature], both[:, feature]) < 1e-4, f"feature {feature}"


def test_breast_cancer_test_not_restandardised(breast_cancer):
    X_test = breast_cancer.X_test.numpy().astype(np.float64)

    assert np.abs(X_test.mean(axis=0)).max() > 1e-3


def test_digits_test_uses_train_statistics(digits):
    raw = load_digits().data.ravel() / 16.0
    both = torch.cat([digits.X_train, digits.X_test]).numpy().astype(np.float64).ravel()

    assert _affine_residual(raw, both) < 1e-4
    assert abs(digits.X_train.mean().item()) < 1e-4
    assert abs(digits.X_test.mean().item()) > 1e-4


def test_load_same_seed_same_split():
    first, second = load("digits", seed=3), load("digits", seed=3)

    assert torch.equal(first.X_train, second.X_train)
    assert torch.equal(first.y_test, second.y_test)


def test_load_other_seed_other_split(digits):
    other = load("digits", seed=1)

    assert not torch.equal(digits.X_test, other.X_test)
    assert other.metadata["split_seed"] == 1


def test_load_unknown_name_lists_names():
    with pytest.raises(ValueError) as error:
        load("cifar-10")

    message = str(error.value)
    assert "cifar-10" in message
    for name in available():
        assert name in message


def test_membership_split_sizes(digits):
    split = membership_split(digits, n_members=500, n_non_members=300, seed=0)

    assert len(split.members) == 500
    assert len(split.non_members) == 300
    assert len(split.population) == len(digits.y_train) - 800


def test_membership_split_default_non_members(digits):
    split = membership_split(digits, n_members=400, seed=0)

    assert len(split.non_members) == 400


def test_membership_split_disjoint_and_complete(digits):
    split = membership_split(digits, n_members=500, seed=0)
    members, non_members, population = (set(part.tolist()) for part in (split.members, split.non_members, split.population))

    assert not members & non_members
    assert not members & population
    assert not non_members & population
    assert members | non_members | population == set(range(len(digits.y_train)))


def test_membership_split_reproducible(digits):
    first = membership_split(digits, n_members=500, seed=4)
    second = membership_split(digits, n_members=500, seed=4)
    other = membership_split(digits, n_members=500, seed=5)

    assert np.array_equal(first.members, second.members)
    assert np.array_equal(first.non_members, second.non_members)
    assert np.array_equal(first.population, second.population)
    assert not np.array_equal(first.members, other.members)


def test_membership_split_stratified(digits):
    split = membership_split(digits, n_members=500, n_non_members=300, seed=0)
    share = np.bincount(digits.y_train.numpy(), minlength=10) / len(digits.y_train)

    for part in (split.members, split.non_members):
        counts = np.bincount(digits.y_train.numpy()[part], minlength=10)
        # A stratified draw rounds each class's expected count up or down.
        assert np.abs(counts - share * len(part)).max() < 1.0 + 1e-9


def test_membership_split_data_matches_index(digits):
    split = membership_split(digits, n_members=200, seed=0)
    X, y = split.member_data()

    assert torch.equal(X, digits.X_train[torch.as_tensor(split.members)])
    assert torch.equal(y, digits.y_train[torch.as_tensor(split.members)])
    assert len(split.population_data()[1]) == len(split.population)
    assert len(split.non_member_data()[1]) == len(split.non_members)
