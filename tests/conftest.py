"""Fixtures shared by the test modules: datasets loaded once per session."""

import pytest

from dpkit.data import load


@pytest.fixture(scope="session")
def digits():
    """The digits dataset with split seed 0 (1,437 train, 360 test, 8x8 images)."""
    return load("digits")


@pytest.fixture(scope="session")
def breast_cancer():
    """The breast-cancer dataset with split seed 0 (455 train, 114 test, 30 features)."""
    return load("breast-cancer")
