"""Tests for dpkit.training: accuracy bands, privacy bookkeeping, seeds and checkpoints.

Private runs use the MLP on digits with large batches (6 steps per epoch), so that
each takes about one CPU second.
"""

import logging
import math
import warnings

import pytest
import torch
from torch import nn

from dpkit._checks import DPKitWarning
from dpkit.models import make_model
from dpkit.training import TrainConfig, evaluate, load_checkpoint, predict_logits, train

PRIVATE = TrainConfig(model="mlp", epochs=2, batch_size=256, lr=2.0, max_grad_norm=0.1, noise_multiplier=1.0)


def _same_weights(first, second, atol=0.0):
    pairs = zip(first.state_dict().values(), second.state_dict().values())
    return all(torch.allclose(a, b, rtol=0.0, atol=atol) for a, b in pairs)


@pytest.fixture(scope="module")
def private_run(digits):
    config = PRIVATE.replace(noise_multiplier=None, target_epsilon=4.0)
    return train(digits, config, progress=False)


@pytest.fixture(scope="module")
def noise_run(digits):
    return train(digits, PRIVATE, progress=False)


def test_nonprivate_accuracy_band(digits):
    config = TrainConfig(model="cnn", epochs=3, batch_size=64, lr=0.1, seed=1)

    result = train(digits, config, progress=False)

    # Seeds 0 to 7 landed between 0.93 and 0.97 after 3 epochs (torch 2.13, CPU).
    assert 0.85 <= result.test_accuracy <= 1.0
    assert result.epsilon == math.inf
    assert result.delta is None
    assert result.accountant is None


def test_private_meets_target(private_run):
    assert private_run.epsilon <= 4.0
    assert private_run.epsilon > 3.9
    assert private_run.delta == 1e-5
    assert private_run.accountant == "rdp"
    assert private_run.noise_multiplier > 0


def test_private_sampling_bookkeeping(private_run, digits):
    batches = math.ceil(len(digits.y_train) / 256)

    assert private_run.sample_rate == pytest.approx(1 / batches)
    assert private_run.steps == 2 * batches


def test_private_accuracy_band(private_run):
    # Seeds 0 to 4 landed between 0.74 and 0.83 (torch 2.13, CPU). Chance is 0.1.
    assert 0.5 <= private_run.test_accuracy <= 1.0


def test_history_rows(private_run):
    history = private_run.history

    assert [row["epoch"] for row in history] == [1, 2]
    for row in history:
        assert set(row) >= {"epoch", "loss", "train_accuracy", "test_accuracy", "epsilon"}
        assert math.isfinite(row["loss"])
        assert 0.0 <= row["train_accuracy"] <= 1.0
        assert 0.0 <= row["test_accuracy"] <= 1.0
    assert history[0]["epsilon"] < history[1]["epsilon"]
    assert history[-1]["epsilon"] == private_run.epsilon
    assert history[-1]["test_accuracy"] == private_run.test_accuracy


def test_result_model_eval_mode(private_run):
    assert not private_run.model.training


def test_same_seed_same_run(digits, noise_run):
    again = train(digits, PRIVATE, progress=False)

    assert again.history == noise_run.history
    assert _same_weights(again.model, noise_run.model)


def test_other_seed_other_run(digits, noise_run):
    other = train(digits, PRIVATE.replace(seed=1), progress=False)

    assert other.history != noise_run.history
    assert not _same_weights(other.model, noise_run.model)
    assert other.epsilon == noise_run.epsilon


def test_physical_batches_same_accounting(digits, noise_run):
    split = train(digits, PRIVATE.replace(max_physical_batch_size=64), progress=False)

    assert split.epsilon == noise_run.epsilon
    assert split.steps == noise_run.steps
    # The same logical batches and noise, summed in another order.
    assert _same_weights(split.model, noise_run.model, atol=1e-6)


@pytest.mark.parametrize("mode", ["functorch", "ghost"])
def test_grad_sample_modes_agree(digits, noise_run, mode):
    assert noise_run.config.grad_sample_mode == "hooks"

    other = train(digits, PRIVATE.replace(grad_sample_mode=mode), progress=False)

    assert other.epsilon == noise_run.epsilon
    assert other.steps == noise_run.steps
    assert _same_weights(other.model, noise_run.model, atol=1e-6)


@pytest.mark.parametrize("mode", ["hooks", "functorch", "ghost"])
def test_empty_poisson_batches(digits, mode):
    # 10 examples with batch_size=1 give sample_rate 0.1, so about a third of the
    # 30 logical batches are empty (the chance that none is: 0.65 ** 30, about 2e-6).
    X, y = digits.X_train[:10], digits.y_train[:10]
    config = TrainConfig(
        model="mlp", epochs=3, batch_size=1, lr=0.1, noise_multiplier=1.0, delta=1e-3, grad_sample_mode=mode
    )

    result = train((X, y), config, progress=False)

    assert result.sample_rate == pytest.approx(0.1)
    assert result.steps == 30
    assert len(result.history) == 3
    assert math.isfinite(result.epsilon)


def test_checkpoint_round_trip(digits, tmp_path):
    path = tmp_path / "run.pt"
    result = train(digits, PRIVATE, progress=False, checkpoint=path)

    state = torch.load(path, weights_only=True)
    fresh = make_model("mlp", input_shape=digits.input_shape, num_classes=digits.num_classes)
    fresh.load_state_dict(state["model"], strict=True)

    assert state["epoch"] == PRIVATE.epochs
    assert torch.equal(predict_logits(fresh, digits.X_test), predict_logits(result.model, digits.X_test))


def test_checkpoint_finished_not_retrained(digits, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dpkit.training")
    path = tmp_path / "run.pt"
    first = train(digits, PRIVATE, progress=False, checkpoint=path)
    caplog.clear()

    again = train(digits, PRIVATE, progress=False, checkpoint=path)

    messages = [record.getMessage() for record in caplog.records if record.name == "dpkit.training"]
    assert not [text for text in messages if text.startswith("epoch")]
    assert again.history == first.history
    assert again.epsilon == first.epsilon
    assert _same_weights(again.model, first.model)


def test_checkpoint_other_settings(digits, tmp_path):
    path = tmp_path / "run.pt"
    train(digits, PRIVATE.replace(epochs=1), progress=False, checkpoint=path)

    with pytest.raises(ValueError) as error:
        train(digits, PRIVATE.replace(epochs=1, lr=1.0, seed=3), progress=False, checkpoint=path)

    message = str(error.value)
    assert "lr" in message
    assert "seed" in message
    assert "epochs" not in message


class _StopAtEpoch(logging.Handler):
    """Raise KeyboardInterrupt when the training loop logs the given epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.prefix = f"epoch {epoch}:"

    def emit(self, record):
        if record.getMessage().startswith(self.prefix):
            raise KeyboardInterrupt


class _Messages(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_checkpoint_resume(digits, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="dpkit.training")
    logger = logging.getLogger("dpkit.training")
    config = PRIVATE.replace(epochs=4)
    path = tmp_path / "run.pt"
    uninterrupted = train(digits, config, progress=False)

    # The epoch 3 record is logged before epoch 3 is saved, so the file contains epoch 2.
    stop = _StopAtEpoch(3)
    logger.addHandler(stop)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(digits, config, progress=False, checkpoint=path)
    finally:
        logger.removeHandler(stop)
    assert load_checkpoint(path)["epoch"] == 2

    messages = _Messages()
    logger.addHandler(messages)
    try:
        resumed = train(digits, config, progress=False, checkpoint=path)
    finally:
        logger.removeHandler(messages)

    trained = [text.split(":")[0] for text in messages.messages if text.startswith("epoch ")]
    assert trained == ["epoch 3", "epoch 4"]
    assert any(text.startswith("resumed") and "after epoch 2" in text for text in messages.messages)
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    assert resumed.epsilon == uninterrupted.epsilon
    assert resumed.steps == uninterrupted.steps
    assert resumed.history == uninterrupted.history
    assert _same_weights(resumed.model, uninterrupted.model)


def _batchnorm_model():
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    )


def test_user_batchnorm_model_private(digits):
    model = _batchnorm_model()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    config = PRIVATE.replace(epochs=1)

    with pytest.warns(DPKitWarning, match="BatchNorm2d"):
        result = train(digits, config, model=model, progress=False)

    assert isinstance(result.model[1], nn.GroupNorm)
    assert isinstance(model[1], nn.BatchNorm2d)
    assert model[2].inplace is True
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert math.isfinite(result.epsilon)


def test_evaluate_perfect_and_wrong():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    right = evaluate(model, X, torch.tensor([0, 1]))
    wrong = evaluate(model, X, torch.tensor([1, 0]))

    assert right["accuracy"] == 1.0
    assert wrong["accuracy"] == 0.0
    assert right["loss"] < wrong["loss"]


def test_predict_logits_keeps_mode():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5))
    model.train()

    logits = predict_logits(model, torch.ones(7, 3), batch_size=3)

    assert tuple(logits.shape) == (7, 2)
    assert model.training


def test_train_leaves_global_rng(digits):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DPKitWarning)
        train(digits, PRIVATE.replace(epochs=1), progress=False)

    assert torch.equal(torch.rand(3), expected)
