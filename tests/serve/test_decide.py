"""The gateway's decision: ranking by weight (or by cost_aware's net quality), the
choosable models only."""

from __future__ import annotations

import numpy as np
import pytest

import smoothie_jax as sj

from .helpers import MODELS, TOPICS, fake_encode

TEXTS = [f"{topic} please" for topic in TOPICS]


def test_without_costs_the_route_is_the_routers(router) -> None:
    decisions = sj.serve.TextRouter(router, fake_encode).decide(TEXTS)
    expected = np.asarray(router.route(fake_encode(TEXTS)))
    assert [d.model for d in decisions] == [MODELS[j] for j in expected]
    weights = np.asarray(router.weights(fake_encode(TEXTS)))
    for d, row in zip(decisions, weights):
        assert list(d.ranking) == [MODELS[j] for j in np.argsort(-row, kind="stable")]
        np.testing.assert_allclose([d.weights[m] for m in MODELS], row, atol=1e-6)
        assert d.net is None and d.score == d.weights[d.model]
        answer = d.to_json()
        assert list(answer) == ["model", "score", "weights", "method", "ranking", "reason"]
        assert answer["ranking"] == list(d.ranking) and answer["weights"] == d.weights
        assert (answer["model"], answer["score"]) == (d.model, d.score)


@pytest.mark.parametrize("tradeoff", [0.0, 0.05, 1.0])
def test_with_costs_the_route_is_cost_awares(router, tradeoff: float) -> None:
    costs = {"alpha": 0.3, "beta": 0.0, "gamma": 0.1}
    decider = sj.serve.TextRouter(router, fake_encode, costs=costs, tradeoff=tradeoff)
    decisions = decider.decide(TEXTS)
    weights = router.weights(fake_encode(TEXTS))
    prices = np.array(list(costs.values()))
    policy = sj.posterior.cost_aware(
        sj.posterior.Posterior(weights[None]), prices, tradeoff=tradeoff
    )
    assert [d.model for d in decisions] == [MODELS[j] for j in np.asarray(policy)]
    if tradeoff:
        assert all("cost-aware" in d.method and d.net is not None for d in decisions)
        assert all(list(d.net) == list(d.ranking) for d in decisions)
        assert all(d.net[d.ranking[0]] >= d.net[d.ranking[1]] for d in decisions)
        assert all(d.to_json()["net"] == d.net for d in decisions)
        assert all(d.to_json()["score"] == d.net[d.model] for d in decisions)


def test_any_batch_size_decides_as_one_text_at_a_time(router) -> None:
    decider = sj.serve.TextRouter(router, fake_encode)
    alone = [decider.decide([t])[0] for t in TEXTS[:3]]
    assert decider.decide(TEXTS[:3]) == alone  # three texts, routed padded to four
    decider.warm_up(8)  # batches of 1, 2, 4 and 8 compiled ahead
    assert decider.decide([]) == []


def test_only_the_allowed_models_are_ranked(router) -> None:
    decisions = sj.serve.TextRouter(router, fake_encode, models=["gamma", "alpha"]).decide(TEXTS)
    assert all(set(d.ranking) == {"alpha", "gamma"} for d in decisions)
    assert all(set(d.weights) == set(MODELS) for d in decisions)  # every weight is reported


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"models": ["delta"]}, "not among"),
        ({"models": []}, "not among"),
        ({"tradeoff": -1.0}, "tradeoff"),
        ({"tradeoff": float("nan")}, "tradeoff"),
        ({"costs": {"alpha": 1.0}}, "costs must cover"),
    ],
)
def test_bad_options_are_refused(router, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sj.serve.TextRouter(router, fake_encode, **options)


def test_a_router_without_model_names_is_refused() -> None:
    x = np.random.default_rng(0).normal(size=(30, 3, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="no model names"):
        sj.serve.TextRouter(sj.fit_router(x, x[:, 0], k=3), fake_encode)


def test_the_recommended_router_decides_from_text_too() -> None:
    texts = [f"{TOPICS[i % 4]} question {i}" for i in range(60)]
    outputs = np.random.default_rng(1).normal(size=(60, 3, 16)).astype(np.float32)
    lengths = np.random.default_rng(2).integers(10, 500, size=(60, 3)).astype(np.float32)
    router = sj.fit_router(
        outputs, fake_encode(texts), k=10, models=list(MODELS), method="auto", lengths=lengths
    )
    (decision,) = sj.serve.TextRouter(router, fake_encode).decide(["python code please"])
    expected = router.decide(fake_encode(["python code please"]))
    assert decision.model == MODELS[int(expected.choice[0])]
    assert decision.method == expected.method and decision.reason == expected.reason
