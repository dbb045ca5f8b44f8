"""Bad inputs to the public API: each raises ValueError naming the parameter, the
value received and a fix, in one table with a test id per row."""

import math
import re
import warnings

import pytest
import torch

from dpkit._checks import DPKitWarning
from dpkit.data import load, membership_split
from dpkit.experiments import Sweep
from dpkit.models import make_model
from dpkit.privacy import epsilon, epsilon_curve, noise_multiplier_for, steps_from_epochs
from dpkit.training import TrainConfig, evaluate, train

NAN = math.nan


def _data(n=20):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=generator), torch.arange(n) % 2


def _mismatched():
    """Features of 5 examples with labels for only 3 of them."""
    X, y = _data()
    return X[:5], y[:3]


def _train(**settings):
    """Train an MLP for one epoch on 20 random examples with the given settings."""
    config = TrainConfig(**{"model": "mlp", "epochs": 1, "batch_size": 10, **settings})
    return train(_data(), config, progress=False)


def _epsilon(**changes):
    arguments = {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 100, "delta": 1e-5, **changes}
    return epsilon(**arguments)


def _noise_for(**changes):
    arguments = {"target_epsilon": 1.0, "sample_rate": 0.01, "steps": 100, "delta": 1e-5, **changes}
    return noise_multiplier_for(**arguments)


def _curve(**changes):
    arguments = {"noise_multiplier": 1.0, "sample_rate": 0.01, "steps": 100, "delta": 1e-5, **changes}
    return epsilon_curve(**arguments)


def _sweep(**changes):
    return Sweep(**{"dataset": "digits", **changes}).validate()


# (test id, call, parameter name, text of the value received)
CASES = [
    # epsilon not positive or NaN
    ("noise_for-target-zero", lambda: _noise_for(target_epsilon=0.0), "target_epsilon", "0.0"),
    ("noise_for-target-negative", lambda: _noise_for(target_epsilon=-1.0), "target_epsilon", "-1.0"),
    ("noise_for-target-nan", lambda: _noise_for(target_epsilon=NAN), "target_epsilon", "nan"),
    ("config-target-zero", lambda: _train(target_epsilon=0.0), "target_epsilon", "0.0"),
    ("config-target-negative", lambda: _train(target_epsilon=-2.0), "target_epsilon", "-2.0"),
    ("config-target-nan", lambda: _train(target_epsilon=NAN), "target_epsilon", "nan"),
    ("sweep-target-zero", lambda: _sweep(target_epsilons=(1.0, 0.0)), "target_epsilons", "0.0"),
    ("sweep-target-nan", lambda: _sweep(target_epsilons=(NAN,)), "target_epsilons", "nan"),
    # delta outside (0, 1)
    *[
        (f"{where}-delta-{value}", call, "delta", repr(value))
        for value in (0.0, 1.0, -1.0, NAN)
        for where, call in (
            ("epsilon", lambda value=value: _epsilon(delta=value)),
            ("noise_for", lambda value=value: _noise_for(delta=value)),
            ("curve", lambda value=value: _curve(delta=value)),
            ("config", lambda value=value: _train(noise_multiplier=1.0, delta=value)),
            ("sweep", lambda value=value: _sweep(delta=value)),
        )
    ],
    # max_grad_norm not positive
    ("config-clip-zero", lambda: _train(noise_multiplier=1.0, max_grad_norm=0.0), "max_grad_norm", "0.0"),
    ("config-clip-negative", lambda: _train(noise_multiplier=1.0, max_grad_norm=-1.0), "max_grad_norm", "-1.0"),
    ("config-clip-nan", lambda: _train(noise_multiplier=1.0, max_grad_norm=NAN), "max_grad_norm", "nan"),
    # negative noise multiplier
    ("epsilon-noise-negative", lambda: _epsilon(noise_multiplier=-1.0), "noise_multiplier", "-1.0"),
    ("epsilon-noise-nan", lambda: _epsilon(noise_multiplier=NAN), "noise_multiplier", "nan"),
    ("curve-noise-negative", lambda: _curve(noise_multiplier=-0.5), "noise_multiplier", "-0.5"),
    ("config-noise-negative", lambda: _train(noise_multiplier=-1.0), "noise_multiplier", "-1.0"),
    # a batch larger than the data
    ("config-batch-too-large", lambda: _train(batch_size=50), "batch_size", "50"),
    ("config-batch-zero", lambda: _train(batch_size=0), "batch_size", "0"),
    # zero epochs or steps
    ("config-epochs-zero", lambda: _train(epochs=0), "epochs", "0"),
    ("epsilon-epochs-zero", lambda: _epsilon(steps=None, epochs=0), "epochs", "0"),
    ("noise_for-epochs-zero", lambda: _noise_for(steps=None, epochs=0), "epochs", "0"),
    ("epsilon-steps-zero", lambda: _epsilon(steps=0), "steps", "0"),
    ("curve-steps-zero", lambda: _curve(steps=0), "steps", "0"),
    # unknown accountant
    ("epsilon-accountant", lambda: _epsilon(accountant="moments"), "accountant", "'moments'"),
    ("noise_for-accountant", lambda: _noise_for(accountant="moments"), "accountant", "'moments'"),
    ("curve-accountant", lambda: _curve(accountant="moments"), "accountant", "'moments'"),
    ("config-accountant", lambda: _train(noise_multiplier=1.0, accountant="moments"), "accountant", "'moments'"),
    ("sweep-accountant", lambda: _sweep(accountant="moments"), "accountant", "'moments'"),
    # unknown dataset
    ("load-dataset", lambda: load("cifar-10"), "name", "'cifar-10'"),
    ("sweep-dataset", lambda: _sweep(dataset="cifar-10"), "dataset", "'cifar-10'"),
    # steps and epochs both or neither
    ("epsilon-steps-and-epochs", lambda: _epsilon(steps=100, epochs=1.0), "steps", "got 2"),
    ("epsilon-no-steps-or-epochs", lambda: _epsilon(steps=None), "epochs", "got 0"),
    ("noise_for-steps-and-epochs", lambda: _noise_for(steps=100, epochs=1.0), "epochs", "got 2"),
    ("noise_for-no-steps-or-epochs", lambda: _noise_for(steps=None), "steps", "got 0"),
    # bad sample_rate
    ("epsilon-rate-zero", lambda: _epsilon(sample_rate=0.0), "sample_rate", "0.0"),
    ("epsilon-rate-negative", lambda: _epsilon(sample_rate=-0.1), "sample_rate", "-0.1"),
    ("epsilon-rate-above-one", lambda: _epsilon(sample_rate=1.5), "sample_rate", "1.5"),
    ("epsilon-rate-nan", lambda: _epsilon(sample_rate=NAN), "sample_rate", "nan"),
    ("noise_for-rate-zero", lambda: _noise_for(sample_rate=0.0), "sample_rate", "0.0"),
    ("curve-rate-above-one", lambda: _curve(sample_rate=2.0), "sample_rate", "2.0"),
    ("steps_from_epochs-rate-zero", lambda: steps_from_epochs(epochs=1, sample_rate=0.0), "sample_rate", "0.0"),
    ("steps_from_epochs-rate-negative", lambda: steps_from_epochs(epochs=1, sample_rate=-0.5), "sample_rate", "-0.5"),
    # other settings
    ("noise_for-tolerance-zero", lambda: _noise_for(tolerance=0.0), "tolerance", "0.0"),
    ("curve-points-one", lambda: _curve(points=1), "points", "1"),
    ("config-lr-zero", lambda: _train(lr=0.0), "lr", "0.0"),
    ("config-optimizer", lambda: _train(optimizer="rmsprop"), "optimizer", "'rmsprop'"),
    ("config-grad-sample-mode", lambda: _train(noise_multiplier=1.0, grad_sample_mode="ew"), "grad_sample_mode", "'ew'"),
    ("config-physical-batch-zero", lambda: _train(max_physical_batch_size=0), "max_physical_batch_size", "0"),
    ("config-seed-negative", lambda: _train(seed=-1), "seed", "-1"),
    ("load-seed-negative", lambda: load("digits", seed=-1), "seed", "-1"),
    ("model-name", lambda: make_model("resnet", input_shape=(30,), num_classes=2), "name", "'resnet'"),
    ("model-one-class", lambda: make_model("mlp", input_shape=(30,), num_classes=1), "num_classes", "1"),
    ("split-members-zero", lambda: membership_split(load("breast-cancer"), n_members=0), "n_members", "0"),
    ("evaluate-lengths", lambda: evaluate(torch.nn.Linear(4, 2), *_mismatched()), "y", "3"),
    ("train-lengths", lambda: train(_mismatched(), progress=False), "data", "'5 examples, 3 labels'"),
    ("split-too-many", lambda: membership_split(load("breast-cancer"), n_members=400), "n_members + n_non_members", "800"),
]


@pytest.mark.parametrize(("call", "name", "value"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input(call, name, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPKitWarning)
        with pytest.raises(ValueError) as error:
            call()

    message = str(error.value)
    assert re.search(rf"\b{re.escape(name)}\b", message), f"parameter {name!r} not named in: {message}"
    received = value if value.startswith("got ") else f"got {value}"
    assert received in message, f"value {value!r} not shown in: {message}"
    # The fix is the sentence after the value received.
    fix = message.split(received, 1)[1]
    assert len(re.findall(r"[A-Za-z]+", fix)) >= 3, f"no fix after the value in: {message}"


def test_delta_above_one_over_n_warns():
    with pytest.warns(DPKitWarning, match=r"delta=0\.1 .*1/20"):
        _train(noise_multiplier=1.0, delta=0.1)


def test_delta_below_one_over_n_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DPKitWarning)
        result = _train(noise_multiplier=1.0, delta=1e-3)

    assert result.delta == 1e-3


def test_nonprivate_delta_not_warned():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DPKitWarning)
        result = _train(delta=0.1)

    assert result.epsilon == math.inf
