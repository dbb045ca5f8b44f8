"""Tests for dpkit.attacks: real training on digits, attack power bands, fast
scores against slow loop versions, the reference bank's contract and bad inputs."""

import doctest
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.ensemble import GradientBoostingClassifier

from dpkit import attacks
from dpkit.attacks import (
    AttackResult,
    ReferenceBank,
    confidence_attack,
    lira,
    loss_attack,
    rmia,
    run_attacks,
    shadow_attack,
)
from dpkit.attacks import _bank, _lira, _rmia, _signals, _threshold
from dpkit.data import load, membership_split
from dpkit.models import make_model
from dpkit.training import TrainConfig, train

N_MEMBERS = 200
N_BANK = 16
CONFIG = TrainConfig(model="mlp", epochs=30, batch_size=32, lr=0.1)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Run this module's small models on one thread, restoring the setting afterwards.

    Intra-op threads do not speed up models this small, and on a busy machine
    they wait for each other and slow training several times over.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def setup():
    """An overfit digits MLP and a pool of its 200 members, 200 non-members and 200 population examples.

    Reference models train on halves of the pool (300 examples), close to the
    target's 200, as LiRA assumes.
    """
    dataset = load("digits")
    split = membership_split(dataset, n_members=N_MEMBERS, seed=0)
    pool = np.concatenate([split.members, split.non_members, split.population[:200]])
    X_pool, y_pool = dataset.X_train[pool], dataset.y_train[pool]
    index = np.arange(2 * N_MEMBERS)
    is_member = index < N_MEMBERS
    target = train(split.member_data(), CONFIG, progress=False)
    shadow_X, shadow_y = dataset.X_train[split.population[200:]], dataset.y_train[split.population[200:]]
    return {
        "model": target.model,
        "X_pool": X_pool,
        "y_pool": y_pool,
        "index": index,
        "is_member": is_member,
        "shadow_X": shadow_X,
        "shadow_y": shadow_y,
        "dataset": dataset,
    }


@pytest.fixture(scope="module")
def bank(setup):
    return ReferenceBank.train(setup["X_pool"], setup["y_pool"], n_models=N_BANK, config=CONFIG, seed=0, progress=False)


def pool_arguments(setup):
    return {key: setup[key] for key in ("index", "is_member", "X_pool", "y_pool")}


def candidates(setup):
    return setup["X_pool"][setup["index"]], setup["y_pool"][setup["index"]]


# ---------------------------------------------------------------------------
# attack power on a model trained without noise


def test_threshold_attacks_find_leak(setup):
    X, y = candidates(setup)
    loss = loss_attack(setup["model"], X, y, setup["is_member"])
    confidence = confidence_attack(setup["model"], X, y, setup["is_member"])
    assert loss.name == "loss"
    assert loss.auc() > 0.55
    assert confidence.auc() > 0.55


def test_lira_detects_overfit_members(setup, bank):
    result = lira(setup["model"], bank, **pool_arguments(setup))
    print(f"LiRA online, 16 models: AUC {result.auc():.3f}, TPR@1% {result.tpr_at_fpr(0.01):.3f}")
    assert result.auc() > 0.65
    assert result.tpr_at_fpr(0.01) > 0.05


def test_lira_beats_loss_at_low_fpr(setup, bank):
    X, y = candidates(setup)
    loss = loss_attack(setup["model"], X, y, setup["is_member"])
    result = lira(setup["model"], bank, **pool_arguments(setup))
    assert result.tpr_at_fpr(0.01) > loss.tpr_at_fpr(0.01)
    assert result.tpr_at_fpr(0.05) > loss.tpr_at_fpr(0.05)


def test_lira_offline_finds_leak(setup, bank):
    result = lira(setup["model"], bank, online=False, **pool_arguments(setup))
    assert result.name == "lira_offline"
    assert result.auc() > 0.6


def test_untrained_target_auc_near_half(setup, bank):
    untrained = make_model("mlp", input_shape=(1, 8, 8), num_classes=10, seed=5)
    X, y = candidates(setup)
    for result in (
        loss_attack(untrained, X, y, setup["is_member"]),
        lira(untrained, bank, **pool_arguments(setup)),
        rmia(untrained, bank, **pool_arguments(setup)),
    ):
        assert abs(result.auc() - 0.5) < 0.1, result.name


def test_random_scores_auc_near_half():
    rng = np.random.default_rng(0)
    is_member = np.repeat([True, False], 1000)
    result = AttackResult("random", rng.normal(size=2000), is_member)
    assert abs(result.auc() - 0.5) < 0.05
    assert result.tpr_at_fpr(0.01) < 0.05


def test_rmia_two_models_comparable_to_lira_offline(setup, bank):
    arguments = pool_arguments(setup)
    rmia_two = rmia(setup["model"], bank, n_reference=2, **arguments)
    lira_two = lira(setup["model"], bank, n_reference=2, online=False, **arguments)
    print(
        f"n_reference=2: RMIA TPR@1% {rmia_two.tpr_at_fpr(0.01):.3f} TPR@5% {rmia_two.tpr_at_fpr(0.05):.3f} "
        f"AUC {rmia_two.auc():.3f}; LiRA offline TPR@1% {lira_two.tpr_at_fpr(0.01):.3f} "
        f"TPR@5% {lira_two.tpr_at_fpr(0.05):.3f} AUC {lira_two.auc():.3f}"
    )
    # 200 non-members make TPR at 1% FPR a count of 2 false positives, so the bands are wide.
    assert rmia_two.tpr_at_fpr(0.01) > 0.02
    assert rmia_two.tpr_at_fpr(0.05) >= 0.5 * lira_two.tpr_at_fpr(0.05)
    assert rmia_two.auc() > lira_two.auc() - 0.05


def test_rmia_one_reference_model_finds_leak(setup, bank):
    result = rmia(setup["model"], bank, n_reference=1, **pool_arguments(setup))
    assert result.settings["n_reference"] == 1
    assert result.auc() > 0.6


def test_shadow_attack_finds_leak(setup):
    X, y = candidates(setup)
    result = shadow_attack(
        setup["model"], X, y, setup["is_member"],
        shadow_X=setup["shadow_X"], shadow_y=setup["shadow_y"], config=CONFIG, n_shadow=2, progress=False,
    )
    assert result.name == "shadow"
    assert result.settings["n_shadow"] == 2
    assert result.auc() > 0.55


def test_shadow_attack_per_class_gradient_boosting(setup):
    X, y = candidates(setup)
    result = shadow_attack(
        setup["model"], X, y, setup["is_member"],
        shadow_X=setup["shadow_X"], shadow_y=setup["shadow_y"], config=CONFIG.replace(epochs=10), n_shadow=1,
        classifier=GradientBoostingClassifier(n_estimators=20, random_state=0), per_class=True, progress=False,
    )
    assert result.settings["classifier"] == "GradientBoostingClassifier"
    assert len(result.settings["per_class_fitted"]) == 10
    assert np.all((result.scores >= 0) & (result.scores <= 1))


# ---------------------------------------------------------------------------
# fast scores against slow, obvious versions


def slow_lira(phi, in_mask, candidates, target_phi, *, online, fixed_variance):
    """LiRA one candidate at a time, with the global spreads pooled in an explicit loop."""
    n_models, n_pool = phi.shape

    def pooled(member):
        deviations, degrees = 0.0, 0
        for i in range(n_pool):
            values = [phi[m, i] for m in range(n_models) if in_mask[m, i] == member]
            deviations += sum((v - np.mean(values)) ** 2 for v in values)
            degrees += len(values) - 1
        return np.sqrt(deviations / degrees)

    scores = []
    for position, i in enumerate(candidates):
        values_in = np.array([phi[m, i] for m in range(n_models) if in_mask[m, i]])
        values_out = np.array([phi[m, i] for m in range(n_models) if not in_mask[m, i]])
        if fixed_variance:
            std_in, std_out = pooled(True), pooled(False)
        else:
            std_in, std_out = np.std(values_in, ddof=1), np.std(values_out, ddof=1)
        t = target_phi[position]
        out_density = stats.norm(values_out.mean(), std_out)
        if online:
            scores.append(stats.norm(values_in.mean(), std_in).logpdf(t) - out_density.logpdf(t))
        else:
            scores.append(np.log(out_density.cdf(t)))
    return np.array(scores)


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fixed_variance", [True, False])
def test_lira_matches_slow_loop(setup, bank, online, fixed_variance):
    arguments = pool_arguments(setup)
    result = lira(setup["model"], bank, online=online, fixed_variance=fixed_variance, n_reference=8, **arguments)
    chosen = np.array([0, 1, 2, 150, 199, 200, 201, 350, 399])
    X, y = candidates(setup)
    target_phi = _signals.logit_confidence(_signals.model_logits(setup["model"], X[chosen]), y[chosen])
    phi, in_mask = bank.phi[:8], bank.in_mask[:8]
    if fixed_variance:
        # The loop pools over the whole pool and is slow. Both versions therefore run on
        # pool examples 0-29 (members) and 200-229 (non-members), where pool examples
        # 0, 1, 2, 200 and 201 sit at positions 0, 1, 2, 30 and 31.
        smaller = np.r_[0:30, 200:230]
        phi, in_mask = phi[:, smaller], in_mask[:, smaller]
        chosen = np.array([0, 1, 2, 30, 31])
        target_phi = target_phi[[0, 1, 2, 5, 6]]
        fast = _lira.lira_scores(phi, in_mask, chosen, target_phi, online=online, fixed_variance=True)
    else:
        fast = result.scores[chosen]
    slow = slow_lira(phi, in_mask, chosen, target_phi, online=online, fixed_variance=fixed_variance)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-9)


def test_lira_default_fixed_variance_rule(setup, bank):
    result = lira(setup["model"], bank, **pool_arguments(setup))
    assert result.settings["fixed_variance"] is True  # 16 models < 64
    assert result.settings["n_reference"] == N_BANK


def test_rmia_matches_slow_loop(setup, bank):
    arguments = pool_arguments(setup)
    result = rmia(setup["model"], bank, n_reference=4, gamma=1.5, a=0.3, n_population_z=50, seed=3, **arguments)
    outside = np.setdiff1d(np.arange(bank.n_pool), setup["index"])
    population = np.sort(np.random.default_rng(3).choice(outside, size=50, replace=False))
    probability = bank.true_class_probability[:4]
    in_mask = bank.in_mask[:4]

    def marginal(i):
        out_values = [probability[m, i] for m in range(4) if not in_mask[m, i]]
        return ((1 + 0.3) * np.mean(out_values) + (1 - 0.3)) / 2

    def target_probability(i):
        logits = _signals.model_logits(setup["model"], setup["X_pool"][i : i + 1])
        return float(torch.softmax(logits.double(), dim=1)[0, int(setup["y_pool"][i])])

    z_ratios = [target_probability(z) / marginal(z) for z in population]
    for position in (0, 7, 199, 200, 333):
        x = setup["index"][position]
        x_ratio = target_probability(x) / marginal(x)
        expected = np.mean([x_ratio / z_ratio > 1.5 for z_ratio in z_ratios])
        assert result.scores[position] == pytest.approx(expected)


def test_rmia_one_model_inverts_approximation():
    probability = np.array([[0.9, 0.4]])
    in_mask = np.array([[True, False]])
    marginal = _rmia.marginal_probability(probability, in_mask, online=False, a=0.5)
    out_estimate = (0.9 - 0.5) / 0.5
    assert marginal[0] == pytest.approx((1.5 * out_estimate + 0.5) / 2)
    assert marginal[1] == pytest.approx((1.5 * 0.4 + 0.5) / 2)


def test_logit_confidence_stable_and_exact():
    logits = torch.tensor([[2.0, 0.5, -1.0], [800.0, 0.0, 0.0]])
    labels = torch.tensor([0, 0])
    phi = _signals.logit_confidence(logits, labels)
    p = torch.softmax(logits[0].double(), dim=0)[0].item()
    assert phi[0] == pytest.approx(np.log(p / (1 - p)))
    assert phi[1] == pytest.approx(800.0 - np.log(2.0))


# ---------------------------------------------------------------------------
# the reference bank's contract


def test_bank_assignment_balanced(bank):
    assert len(bank) == N_BANK
    assert np.all(bank.in_mask.sum(axis=0) == N_BANK // 2)
    for pair in range(N_BANK // 2):
        assert np.all(bank.in_mask[2 * pair] != bank.in_mask[2 * pair + 1])
    for prefix in range(2, N_BANK + 1, 2):
        assert np.all(bank.in_mask[:prefix].sum(axis=0) == prefix // 2)


def test_bank_records_outputs_and_timings(bank):
    assert bank.phi.shape == bank.true_class_probability.shape == (N_BANK, bank.n_pool)
    assert np.all(np.isfinite(bank.phi))
    assert np.all(bank.seconds > 0)
    assert bank.in_accuracy.mean() > 0.99
    assert 0.8 < bank.out_accuracy.mean() < 1.0
    assert bank.settings()["config"]["model"] == "mlp"


def test_bank_reproducible_from_seed(setup):
    X, y = setup["X_pool"], setup["y_pool"]
    quick = CONFIG.replace(epochs=2)
    first = ReferenceBank.train(X, y, n_models=4, config=quick, seed=7, progress=False)
    second = ReferenceBank.train(X, y, n_models=4, config=quick, seed=7, progress=False)
    other = ReferenceBank.train(X, y, n_models=4, config=quick, seed=8, progress=False)
    np.testing.assert_array_equal(first.in_mask, second.in_mask)
    np.testing.assert_array_equal(first.model_seeds, second.model_seeds)
    np.testing.assert_allclose(first.phi, second.phi)
    assert not np.array_equal(first.in_mask, other.in_mask)


def test_bank_save_load_round_trip(bank, tmp_path):
    path = tmp_path / "bank.npz"
    bank.save(path)
    loaded = ReferenceBank.load(path)
    for name in _bank._ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(bank, name))
    assert loaded.config == bank.config
    assert loaded.settings() == bank.settings()
    assert [p.name for p in tmp_path.iterdir()] == ["bank.npz"]


def test_bank_load_damaged_file_raises(bank, tmp_path):
    path = tmp_path / "bank.npz"
    bank.save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable ReferenceBank file"):
        ReferenceBank.load(path)


def test_vectorized_bank_like_one_by_one(setup, bank):
    vectorized = ReferenceBank.train(
        setup["X_pool"], setup["y_pool"], n_models=8, config=CONFIG, seed=0, progress=False, vectorized=True
    )
    assert vectorized.vectorized
    np.testing.assert_array_equal(vectorized.in_mask, bank.in_mask[:8])
    assert vectorized.in_accuracy.mean() > 0.99
    assert abs(vectorized.out_accuracy.mean() - bank.out_accuracy[:8].mean()) < 0.03
    result = lira(setup["model"], vectorized, **pool_arguments(setup))
    assert result.auc() > 0.65


def test_vectorized_rejects_private_config(setup):
    private = CONFIG.replace(noise_multiplier=1.0, delta=1e-3)
    with pytest.raises(ValueError, match="^vectorized must be False for private configs"):
        ReferenceBank.train(setup["X_pool"], setup["y_pool"], n_models=2, config=private, vectorized=True, progress=False)


# ---------------------------------------------------------------------------
# results and the convenience runner


def test_run_attacks_returns_named_results(setup, bank):
    results = run_attacks(
        setup["model"], bank=bank, **pool_arguments(setup),
        attacks=("loss", "confidence", "lira", "lira_offline", "rmia", "rmia_online"), n_reference=4,
    )
    assert list(results) == ["loss", "confidence", "lira", "lira_offline", "rmia", "rmia_online"]
    for name, result in results.items():
        assert result.name == name
        assert result.scores.shape == (2 * N_MEMBERS,)
        assert result.settings["seconds"] >= 0
    assert results["lira"].settings["n_reference"] == 4
    assert results["rmia"].settings["n_reference"] == 4


def test_run_attacks_rejects_unknown_option(setup, bank):
    with pytest.raises(ValueError, match="^options must be"):
        run_attacks(setup["model"], bank=bank, **pool_arguments(setup), attacks=("loss",), n_reference=4)


def test_summary_row_carries_settings(setup, bank):
    result = lira(setup["model"], bank, n_reference=4, **pool_arguments(setup))
    row = result.summary(fprs=(0.01,), ci=False)
    assert row["attack"] == "lira"
    assert row["n_reference"] == 4
    assert row["online"] is True
    assert "bank" not in row
    assert row["auc"] == pytest.approx(result.auc())
    assert row["tpr@1%"] == pytest.approx(result.tpr_at_fpr(0.01))


def test_roc_delegates_to_audit(setup, bank):
    result = lira(setup["model"], bank, **pool_arguments(setup))
    fpr, tpr, _ = result.roc()
    assert fpr[0] == 0
    assert fpr[-1] == 1
    assert np.all(np.diff(tpr) >= 0)
    assert 0 <= result.advantage() <= 1


# ---------------------------------------------------------------------------
# bad inputs


def test_n_reference_above_bank_raises(setup, bank):
    with pytest.raises(ValueError, match=r"^n_reference must be at most the 16 reference models in the bank, got 18\."):
        lira(setup["model"], bank, n_reference=18, **pool_arguments(setup))
    with pytest.raises(ValueError, match="^n_reference must be at most"):
        rmia(setup["model"], bank, n_reference=17, **pool_arguments(setup))


def bad_input_cases(setup, bank):
    model = setup["model"]
    X, y = candidates(setup)
    member = setup["is_member"]
    pool = pool_arguments(setup)

    def with_pool(**changes):
        return {**pool, **changes}

    shadow = {"shadow_X": setup["shadow_X"], "shadow_y": setup["shadow_y"], "config": CONFIG}
    return [
        ("model", lambda: loss_attack("not a model", X, y, member)),
        ("is_member", lambda: loss_attack(model, X, y, member.astype(int) * 2)),
        ("is_member", lambda: loss_attack(model, X, y, member[:-1])),
        ("is_member", lambda: loss_attack(model, X, y, np.ones(len(y), dtype=bool))),
        ("is_member", lambda: loss_attack(model, X, y, np.array(["yes"] * len(y)))),
        ("y", lambda: confidence_attack(model, X, y[:-1], member)),
        ("y", lambda: confidence_attack(model, X, y.float(), member)),
        ("n_models", lambda: ReferenceBank.train(X, y, n_models=3, config=CONFIG, progress=False)),
        ("n_models", lambda: ReferenceBank.train(X, y, n_models=0, config=CONFIG, progress=False)),
        ("config", lambda: ReferenceBank.train(X, y, n_models=2, config={"epochs": 1}, progress=False)),
        ("batch_size", lambda: ReferenceBank.train(X[:10], y[:10], n_models=2, config=CONFIG, progress=False)),
        ("model_fn", lambda: ReferenceBank.train(X, y, n_models=2, config=CONFIG, model_fn=3, progress=False)),
        ("bank", lambda: lira(model, "bank", **pool)),
        ("index", lambda: lira(model, bank, **with_pool(index=np.array([0, bank.n_pool]), is_member=[True, False]))),
        ("index", lambda: lira(model, bank, **with_pool(index=np.array([-1, 3]), is_member=[True, False]))),
        ("index", lambda: lira(model, bank, **with_pool(index=np.array([3, 3]), is_member=[True, False]))),
        ("index", lambda: lira(model, bank, **with_pool(index=np.array([0.5, 1.0]), is_member=[True, False]))),
        ("is_member", lambda: lira(model, bank, **with_pool(is_member=member[:10]))),
        ("n_reference", lambda: lira(model, bank, n_reference=3, **pool)),
        ("n_reference", lambda: lira(model, bank, n_reference=0, **pool)),
        ("fixed_variance", lambda: lira(model, bank, n_reference=2, fixed_variance=False, **pool)),
        ("fixed_variance", lambda: lira(model, bank, fixed_variance="yes", **pool)),
        ("X_pool", lambda: lira(model, bank, **with_pool(X_pool=setup["X_pool"][:-1], y_pool=setup["y_pool"][:-1]))),
        ("X_pool", lambda: lira(model, bank, **with_pool(X_pool=setup["X_pool"] + 1.0))),
        ("gamma", lambda: rmia(model, bank, gamma=0, **pool)),
        ("a", lambda: rmia(model, bank, a=1.5, **pool)),
        ("a", lambda: rmia(model, bank, n_reference=1, a=0.0, **pool)),
        ("n_reference", lambda: rmia(model, bank, n_reference=1, online=True, **pool)),
        ("n_population_z", lambda: rmia(model, bank, n_population_z=10_000, **pool)),
        ("n_population_z", lambda: rmia(model, bank, n_population_z=0, **pool)),
        ("index", lambda: rmia(model, bank, **with_pool(index=np.arange(bank.n_pool), is_member=np.arange(bank.n_pool) < 10))),
        ("n_shadow", lambda: shadow_attack(model, X, y, member, n_shadow=0, **shadow)),
        ("classifier", lambda: shadow_attack(model, X, y, member, classifier=object(), **shadow)),
        ("shadow_y", lambda: shadow_attack(model, X, y, member, **{**shadow, "shadow_y": setup["shadow_y"][:-1]})),
        ("attacks", lambda: run_attacks(model, bank=bank, **pool, attacks=("lira", "loira"))),
        ("attacks", lambda: run_attacks(model, bank=bank, **pool, attacks=("lira", "lira"))),
        ("bank", lambda: run_attacks(model, bank=None, **pool, attacks=("lira",))),
        ("online", lambda: run_attacks(model, bank=bank, **pool, attacks=("lira",), online=False)),
    ]


def test_bad_inputs_raise_naming_parameter(setup, bank):
    for parameter, call in bad_input_cases(setup, bank):
        with pytest.raises(ValueError) as raised:
            call()
        message = str(raised.value)
        assert message.startswith(f"{parameter} must be"), message
        assert ". " in message, message


def test_attack_result_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="^scores and is_member must be"):
        AttackResult("x", np.zeros(3), np.zeros(2, dtype=bool))


def test_docstring_examples_run():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in (_threshold, _bank, _lira, _rmia):
            result = doctest.testmod(module)
            assert result.attempted > 0, module.__name__
            assert result.failed == 0, module.__name__
    assert set(attacks.__all__) >= {"lira", "rmia", "ReferenceBank", "AttackResult", "run_attacks"}
