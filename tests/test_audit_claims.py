"""End-to-end audits of trained models: a DP claim that holds is not refuted, and a
mechanism that claims a small epsilon while adding no noise is caught.

The targets are digits MLPs. LiRA uses a reference bank of non-private models trained
on halves of the pool, as an attacker would; the one-run audit inserts mislabeled
canaries, each trained on with probability 1/2.
"""

import numpy as np
import pytest
import torch

from dpkit import audit
from dpkit.attacks import ReferenceBank, lira, loss_attack
from dpkit.data import load, membership_split
from dpkit.training import TrainConfig, train

N_MEMBERS = 500
DELTA = 1e-5
CLAIMED_EPSILON = 0.5
REFERENCE = TrainConfig(model="mlp", epochs=30, batch_size=32, lr=0.1)
# Clipped per-sample gradients and DP-SGD's sampling, but zero noise: epsilon is infinite
# whatever the claim says.
BROKEN = TrainConfig(model="mlp", epochs=30, batch_size=32, lr=0.5, max_grad_norm=1.0, noise_multiplier=0.0)
PRIVATE = TrainConfig(
    model="mlp", epochs=30, batch_size=128, lr=0.5, max_grad_norm=1.0, target_epsilon=CLAIMED_EPSILON, delta=DELTA
)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small models train fastest on one thread; the setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup():
    dataset = load("digits")
    split = membership_split(dataset, n_members=N_MEMBERS, seed=0)
    pool = np.concatenate([split.members, split.non_members, split.population])
    X_pool, y_pool = dataset.X_train[pool], dataset.y_train[pool]
    index = np.arange(2 * N_MEMBERS)
    bank = ReferenceBank.train(X_pool, y_pool, n_models=8, config=REFERENCE, seed=0, progress=False)
    return {"split": split, "X_pool": X_pool, "y_pool": y_pool, "index": index, "is_member": index < N_MEMBERS, "bank": bank}


def attack(setup, config):
    target = train(setup["split"].member_data(), config, progress=False)
    arguments = {key: setup[key] for key in ("index", "is_member", "X_pool", "y_pool")}
    X, y = setup["X_pool"][setup["index"]], setup["y_pool"][setup["index"]]
    return target, {
        "lira": lira(target.model, setup["bank"], **arguments),
        "loss": loss_attack(target.model, X, y, setup["is_member"]),
    }


def canary_audit(config, *, n_canaries=200, seed=0):
    """One-run canary audit: mislabeled canaries, each trained on with probability 1/2."""
    dataset = load("digits")
    split = membership_split(dataset, n_members=400, n_non_members=n_canaries, seed=seed)
    X_members, y_members = split.member_data()
    X_canaries, y_true = split.non_member_data()
    y_canaries = (y_true + 1) % dataset.num_classes
    canary_in = np.random.default_rng(seed).random(n_canaries) < 0.5
    inside = torch.as_tensor(canary_in)
    X = torch.cat([X_members, X_canaries[inside]])
    y = torch.cat([y_members, y_canaries[inside]])

    target = train((X, y), config, progress=False)
    scores = loss_attack(target.model, X_canaries, y_canaries, canary_in).scores
    return target, audit.one_run_audit(scores, canary_in, k_plus=20, k_minus=20, delta=DELTA)


def test_broken_mechanism_refuted():
    target, result = canary_audit(BROKEN.replace(epochs=50))

    assert target.epsilon == float("inf")
    assert result.epsilon > CLAIMED_EPSILON


def test_private_mechanism_passes_canary_audit():
    target, result = canary_audit(PRIVATE)

    assert target.epsilon <= CLAIMED_EPSILON
    assert result.epsilon <= target.epsilon


@pytest.fixture(scope="module")
def private_results(setup):
    return attack(setup, PRIVATE)


def test_private_target_meets_claim(private_results):
    target, _ = private_results

    assert target.epsilon <= CLAIMED_EPSILON


@pytest.mark.parametrize("name", ["lira", "loss"])
def test_private_lower_bound_below_epsilon(private_results, name):
    target, results = private_results
    result = results[name]
    for method in ("split", "bonferroni"):
        bound = audit.epsilon_lower_bound(result.is_member, result.scores, delta=DELTA, method=method)
        assert bound.epsilon <= target.epsilon, method


@pytest.mark.parametrize("name", ["lira", "loss"])
def test_private_roc_under_dp_bound(private_results, name):
    """Every ROC point's TPR lower confidence limit lies under the bound at its FPR upper limit.

    The limits are one-sided Clopper-Pearson bounds at 95% confidence jointly over all
    thresholds (Bonferroni), so a chance excursion at one of many points does not count.
    """
    target, results = private_results
    result = results[name]
    scores, members = result.scores, result.is_member
    thresholds = np.unique(scores)
    true_positives = np.array([(scores[members] >= t).sum() for t in thresholds])
    false_positives = np.array([(scores[~members] >= t).sum() for t in thresholds])
    confidence = 1 - 0.05 / (2 * len(thresholds))

    tpr_low, _ = audit.clopper_pearson(true_positives, int(members.sum()), confidence=confidence, alternative="greater")
    _, fpr_high = audit.clopper_pearson(false_positives, int((~members).sum()), confidence=confidence, alternative="less")
    bound = audit.dp_roc_bound(fpr_high, epsilon=target.epsilon, delta=target.delta)

    assert np.all(tpr_low <= bound + 1e-12)
