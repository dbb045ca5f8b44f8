"""Tests for dpkit.models: built-in models and fixing a user's model for Opacus."""

import warnings

import pytest
import torch
from opacus.validators import ModuleValidator
from torch import nn

from dpkit._checks import DPKitWarning
from dpkit.models import MODELS, default_model_for, make_model, make_private_compatible

# (model name, input shape of one example, number of classes) for each built-in
# dataset: mnist-5k, digits and breast-cancer.
CASES = [
    ("cnn", (1, 28, 28), 10),
    ("mlp", (1, 28, 28), 10),
    ("logreg", (1, 28, 28), 10),
    ("cnn", (1, 8, 8), 10),
    ("mlp", (1, 8, 8), 10),
    ("logreg", (1, 8, 8), 10),
    ("mlp", (30,), 2),
    ("logreg", (30,), 2),
]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape, _ in CASES]


def _batchnorm_model():
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 10),
    )


class _Scale(nn.Module):
    """A layer with its own parameter and no per-sample gradient rule in Opacus."""

    def __init__(self, features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))

    def forward(self, x):
        return x * self.weight


@pytest.mark.parametrize(("name", "input_shape", "num_classes"), CASES, ids=IDS)
def test_model_forward_shape(name, input_shape, num_classes):
    model = make_model(name, input_shape=input_shape, num_classes=num_classes, seed=0)

    logits = model(torch.zeros(5, *input_shape))

    assert tuple(logits.shape) == (5, num_classes)


@pytest.mark.parametrize(("name", "input_shape", "num_classes"), CASES, ids=IDS)
def test_model_opacus_valid(name, input_shape, num_classes):
    model = make_model(name, input_shape=input_shape, num_classes=num_classes, seed=0)

    assert ModuleValidator.validate(model, strict=False) == []


def test_model_names():
    assert set(MODELS) == {"cnn", "mlp", "logreg"}


def test_model_same_seed_same_weights():
    first = make_model("cnn", input_shape=(1, 8, 8), num_classes=10, seed=7)
    second = make_model("cnn", input_shape=(1, 8, 8), num_classes=10, seed=7)

    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def test_model_other_seed_other_weights():
    first = make_model("mlp", input_shape=(30,), num_classes=2, seed=7)
    second = make_model("mlp", input_shape=(30,), num_classes=2, seed=8)

    assert not torch.equal(first[1].weight, second[1].weight)


def test_model_seed_keeps_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)

    make_model("mlp", input_shape=(30,), num_classes=2, seed=0)

    assert torch.equal(torch.rand(3), expected)


def test_cnn_rejects_tabular_shape():
    with pytest.raises(ValueError, match="input_shape"):
        make_model("cnn", input_shape=(30,), num_classes=2)


def test_default_model_for(digits, breast_cancer):
    assert default_model_for(digits) == "cnn"
    assert default_model_for(breast_cancer) == "mlp"


def test_compatible_fixes_batchnorm_and_inplace():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPKitWarning)
        fixed = make_private_compatible(_batchnorm_model())

    assert isinstance(fixed[1], nn.GroupNorm)
    assert fixed[2].inplace is False
    assert ModuleValidator.validate(fixed, strict=False) == []


def test_compatible_one_warning_naming_changes():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_private_compatible(_batchnorm_model())

    dpkit_warnings = [w for w in caught if issubclass(w.category, DPKitWarning)]
    assert len(dpkit_warnings) == 1
    message = str(dpkit_warnings[0].message)
    assert "BatchNorm2d" in message
    assert "GroupNorm" in message
    assert "inplace" in message


def test_compatible_keeps_original():
    original = _batchnorm_model()
    before = {name: value.clone() for name, value in original.state_dict().items()}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPKitWarning)
        fixed = make_private_compatible(original)

    assert fixed is not original
    assert isinstance(original[1], nn.BatchNorm2d)
    assert original[2].inplace is True
    for name, value in original.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_compatible_model_no_warning():
    model = make_model("mlp", input_shape=(30,), num_classes=2, seed=0)

    with warnings.catch_warnings():
        warnings.simplefilter("error", DPKitWarning)
        fixed = make_private_compatible(model)

    assert fixed is not model


def test_compatible_unsupported_layer_named():
    model = nn.Sequential(nn.Linear(3, 3), _Scale(3))

    with pytest.raises(ValueError) as error:
        make_private_compatible(model)

    assert "_Scale" in str(error.value)


def test_compatible_rejects_non_module():
    with pytest.raises(ValueError, match="model"):
        make_private_compatible("resnet18")
