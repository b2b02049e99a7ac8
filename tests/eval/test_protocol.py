"""`evaluate`, the paper's protocol: every number is recomputed here with plain loops.

Data: `tasks.make_data`, two tasks with opposite model rankings; the `result` fixture
(conftest.py) is one evaluation of five ensembles shared by the eval tests.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import TEST_TIME, TRAIN_TIME, EvaluationResult, evaluate
from smoothie_jax.eval._names import (
    AUTO_ROUTER,
    BEST_ON_VAL,
    BEST_SINGLE,
    GLOBAL,
    LABELLED,
    LONGEST,
    LONGEST_PAST,
    MEDOID,
    ORACLE,
    RANDOM,
    ROUTER,
    labelled_knn_name,
    local_name,
    router_name,
)
from smoothie_jax.eval._stats import spearman

from .tasks import NAMES, Data, M, N, one_ensemble_data, routed


@pytest.mark.slow
def test_rows_in_table_order(result: EvaluationResult) -> None:
    names = lambda regime: [r.name for r in result.methods if r.regime == regime]  # noqa: E731
    assert names(TEST_TIME) == [
        RANDOM,
        BEST_SINGLE,
        ORACLE,
        LONGEST,
        MEDOID,
        GLOBAL,
        local_name(1),
        local_name(20),
        ROUTER,
        BEST_ON_VAL,
        labelled_knn_name(20),
    ]
    assert names(TRAIN_TIME) == [
        RANDOM,
        BEST_SINGLE,
        ORACLE,
        LONGEST_PAST,
        GLOBAL,
        router_name(20),
        AUTO_ROUTER,
        BEST_ON_VAL,
        labelled_knn_name(20),
    ]


@pytest.mark.slow
def test_reference_baselines_match_loops(data: Data, result: EvaluationResult) -> None:
    _, _, scores, lengths = data
    for e, ens in enumerate(result.ensembles):
        rows = result.evaluated[e]
        model_means = [np.mean([scores[i, j] for i in rows]) for j in ens]
        oracle = 100 * np.mean([max(scores[i, j] for j in ens) for i in rows])
        # Longest output, ties to the lower model index.
        longest = {i: max(ens, key=lambda j, i=i: (lengths[i, j], -j)) for i in rows}
        expected = {
            RANDOM: 100 * np.mean(model_means),
            BEST_SINGLE: 100 * max(model_means),
            ORACLE: oracle,
            LONGEST: routed(scores, rows, longest),
        }
        for name, value in expected.items():
            np.testing.assert_allclose(result.method(name).per_ensemble[e], value, rtol=1e-9)
    # The protocol's ordering holds in every ensemble.
    for e in range(len(result.ensembles)):
        at = {r.name: r.per_ensemble[e] for r in result.methods if r.regime == TEST_TIME}
        assert at[RANDOM] <= at[BEST_SINGLE] <= at[ORACLE]
        assert max(at.values()) == at[ORACLE]


@pytest.mark.slow
def test_medoid_is_local_k1_and_the_embedding_medoid(data: Data, result: EvaluationResult) -> None:
    outputs, _, scores, _ = data
    assert result.method(MEDOID).per_ensemble == result.method(local_name(1)).per_ensemble
    for e, ens in enumerate(result.ensembles):
        rows = result.evaluated[e]
        medoid = {}
        for i in rows:
            emb = outputs[i, list(ens)].astype(np.float64)
            total = [
                sum(np.sum((emb[a] - emb[b]) ** 2) for b in range(len(ens)))
                for a in range(len(ens))
            ]
            medoid[i] = ens[int(np.argmin(total))]
        np.testing.assert_allclose(
            result.method(MEDOID).per_ensemble[e], routed(scores, rows, medoid), rtol=1e-6
        )


@pytest.mark.slow
def test_smoothie_rows_match_direct_fits(data: Data, result: EvaluationResult) -> None:
    outputs, inputs, scores, _ = data
    hits = 0
    for e, ens in enumerate(result.ensembles):
        rows, cols = result.evaluated[e], list(ens)
        smoothie = sj.fit_global(outputs[:, cols])  # no NaN: fit on every input
        choice = ens[int(smoothie.route())]
        assert result.global_choice[e] == choice
        np.testing.assert_allclose(result.global_weights[e], smoothie.weights, rtol=1e-6)
        np.testing.assert_allclose(
            result.method(GLOBAL).per_ensemble[e],
            routed(scores, rows, dict.fromkeys(rows, choice)),
        )
        local = np.asarray(sj.fit_local(outputs[:, cols], inputs, k=20).route())
        np.testing.assert_allclose(
            result.method(local_name(20)).per_ensemble[e],
            routed(scores, rows, {i: ens[local[i]] for i in rows}),
        )
        means = np.array([np.mean([scores[i, j] for i in rows]) for j in ens])
        assert result.best_model[e] == ens[int(np.argmax(means))]
        best_here = bool(means[ens.index(choice)] == means.max())
        assert result.global_is_best[e] == best_here
        hits += best_here
        assert result.spearman[e] == pytest.approx(spearman(smoothie.weights, means))
    assert result.picked_best == hits
    assert result.mean_spearman == pytest.approx(np.mean(result.spearman))


@pytest.mark.slow
def test_train_time_rows_match_direct_fits(data: Data, result: EvaluationResult) -> None:
    outputs, inputs, scores, lengths = data
    for e, split in enumerate(result.splits):
        cols = list(split.models)
        past, new = split.past, split.new
        router = sj.fit_router(outputs[past][:, cols], inputs[past], k=20)
        route = np.asarray(router.route(inputs[new]))
        want = 100 * np.mean(scores[new][:, cols][np.arange(len(new)), route])
        got = result.method(router_name(20), TRAIN_TIME).per_ensemble[e]
        assert got == pytest.approx(want, rel=1e-9)
        longest = int(np.argmax(lengths[past][:, cols].mean(axis=0)))
        got = result.method(LONGEST_PAST, TRAIN_TIME).per_ensemble[e]
        assert got == pytest.approx(100 * scores[new][:, cols][:, longest].mean())
        # Labelled baselines read only scored past inputs.
        lab = scores[split.past_labelled][:, cols].mean(axis=0)
        tied = lab == lab.max()  # ties split evenly
        got = result.method(BEST_ON_VAL, TRAIN_TIME).per_ensemble[e]
        assert got == pytest.approx(100 * scores[new][:, cols][:, tied].mean())


@pytest.mark.slow
def test_seed_makes_results_reproducible(data: Data, result: EvaluationResult) -> None:
    again = evaluate(*data, NAMES, ensembles=5, size=5, seed=0, ks=(1, 20), n_labelled=50)
    assert again.to_json() == result.to_json()
    other = evaluate(*data, NAMES, ensembles=5, size=5, seed=1, ks=(1, 20), n_labelled=50)
    assert other.ensembles != result.ensembles and other.labelled != result.labelled


# ---------------------------------------------------------------- checks before any work


@pytest.mark.parametrize("size", [2, M + 1])
def test_size_out_of_range_raises(data: Data, size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        evaluate(*data, NAMES, size=size)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"models": NAMES[:-1]}, "names"),
        ({"models": ("a",) * M}, "unique"),
        ({"n_labelled": N}, "n_labelled"),
        ({"ks": (0,)}, "ks"),
        ({"ensembles": 0}, "ensembles"),
        ({"ensembles": True}, "ensembles must be an int"),
        pytest.param({"seed": 1.0}, "seed must be an int", marks=pytest.mark.unchecked),
    ],
)
def test_bad_arguments_raise(data: Data, change: dict, match: str) -> None:
    kwargs = {"models": NAMES, **change}
    with pytest.raises(ValueError, match=match):
        evaluate(*data, **kwargs)


@pytest.mark.unchecked  # scores of the wrong shape break the annotation: the checker would answer
def test_bad_score_tables_raise(data: Data) -> None:
    outputs, inputs, scores, lengths = data
    with pytest.raises(ValueError, match="scores must have shape"):
        evaluate(outputs, inputs, scores[:, :-1], lengths, NAMES)
    bad = scores.copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="scores contains inf"):
        evaluate(outputs, inputs, bad, lengths, NAMES)
    bad_lengths = lengths.copy()
    bad_lengths[0, 0] = np.nan
    with pytest.raises(ValueError, match="lengths contains NaN"):
        evaluate(outputs, inputs, scores, bad_lengths, NAMES)


# ---------------------------------------------------------------- what the protocol keeps


@pytest.mark.slow
def test_full_set_is_evaluated_once(data: Data) -> None:
    outputs, inputs, scores, lengths = data
    got = evaluate(
        outputs[:60, :3],
        inputs[:60],
        scores[:60, :3],
        lengths[:60, :3],
        NAMES[:3],
        ensembles=4,
        size=3,
        ks=(5,),
        n_labelled=10,
    )
    assert got.ensembles == ((0, 1, 2),)
    assert any("evaluated once" in note for note in got.notes)


def run_one(data: Data, **kwargs: object) -> EvaluationResult:
    return evaluate(*data, "abcd", size=4, seed=7, ks=(5,), n_labelled=30, **kwargs)


@pytest.mark.slow
def test_labelled_baselines_choose_from_labelled_inputs_only() -> None:
    outputs, inputs, scores, lengths = one_ensemble_data()
    first = run_one((outputs, inputs, scores, lengths), knn_labelled_k=5)
    labelled = list(first.labelled[0])
    # The labelled inputs say model a is best; on every held-out input model b is.
    scores = np.zeros_like(scores)
    scores[:, 1] = 1.0
    scores[labelled] = [1.0, 0.0, 0.0, 0.0]
    got = run_one((outputs, inputs, scores, lengths), knn_labelled_k=5)
    assert got.labelled == first.labelled  # the split never reads scores
    assert got.method(BEST_SINGLE).per_ensemble == (100.0,)
    assert got.method(BEST_ON_VAL).per_ensemble == (0.0,)
    assert got.method(labelled_knn_name(5)).per_ensemble == (0.0,)


@pytest.mark.slow
def test_labelled_baselines_split_ties_evenly() -> None:
    outputs, inputs, scores, lengths = one_ensemble_data()
    labelled = list(run_one((outputs, inputs, scores, lengths), knn_labelled_k=5).labelled[0])
    # Models a and b tie on every labelled input; b is right on every held-out one. The
    # first column's win (argmax) would read the column order, not the labels.
    scores = np.zeros_like(scores)
    scores[:, 1] = 1.0
    scores[labelled] = [1.0, 1.0, 0.0, 0.0]
    got = run_one((outputs, inputs, scores, lengths), knn_labelled_k=5)
    assert got.method(BEST_ON_VAL).per_ensemble == (50.0,)
    assert got.method(labelled_knn_name(5)).per_ensemble == (50.0,)


@pytest.mark.slow
def test_labelled_knn_routes_by_neighbourhood() -> None:
    outputs, inputs, scores, lengths = one_ensemble_data()
    cluster = np.arange(len(scores)) % 2
    scores = np.zeros_like(scores)
    scores[cluster == 0, 0] = 1.0  # a is right on cluster 0, b on cluster 1
    scores[cluster == 1, 1] = 1.0
    got = run_one((outputs, inputs, scores, lengths), knn_labelled_k=5)
    assert got.method(labelled_knn_name(5)).per_ensemble == (100.0,)
    assert got.method(ORACLE).per_ensemble == (100.0,)
    assert got.method(BEST_ON_VAL).mean < 60
    # knn_labelled_k above n_labelled is clipped, and the row is named by the k used.
    clipped = run_one((outputs, inputs, scores, lengths), knn_labelled_k=100)
    assert clipped.methods[-1].name == labelled_knn_name(30)
    assert any("clipped" in note for note in clipped.notes)


@pytest.mark.slow
def test_no_labels_scores_every_kept_input(data: Data) -> None:
    got = evaluate(*data, NAMES, ensembles=2, ks=(20,), n_labelled=0)
    assert got.labelled == ((), ())
    assert all(len(rows) == N for rows in got.evaluated)
    assert [r for r in got.methods if r.kind == LABELLED] == []
    assert "labelled inputs are never scored" not in got.to_text()


@pytest.mark.slow
def test_nan_scores_drop_inputs_per_ensemble(data: Data) -> None:
    outputs, inputs, scores, lengths = data
    scores = scores.copy()
    scores[:20, 0] = np.nan  # model-0 missed the first 20 inputs
    got = evaluate(
        outputs, inputs, scores, lengths, NAMES, ensembles=6, size=4, ks=(190,), n_labelled=50
    )
    assert any(0 in ens for ens in got.ensembles) and any(0 not in ens for ens in got.ensembles)
    for e, ens in enumerate(got.ensembles):
        kept = sorted(got.labelled[e] + got.evaluated[e])
        assert kept == list(range(20 if 0 in ens else 0, N))
        rows = got.evaluated[e]
        means = [np.mean([scores[i, j] for i in rows]) for j in ens]
        np.testing.assert_allclose(got.method(RANDOM).per_ensemble[e], 100 * np.mean(means))
    assert all(math.isfinite(v) for r in got.methods for v in r.per_ensemble)
    assert got.model_scores[0] == pytest.approx(100 * np.mean(scores[20:, 0]))
    assert any("dropped" in note for note in got.notes)
    # k=190 exceeds the 180 kept inputs exactly where model-0 is in the ensemble.
    with_0 = [e for e, ens in enumerate(got.ensembles) if 0 in ens]
    assert f"k=190 clipped to the ensemble's input count in ensembles {with_0}." in got.to_text()
    # Too few complete inputs for the labelled split is an error, not a silent skip.
    scores[:, 1] = np.nan
    scores[:40, 1] = 0.5
    with pytest.raises(ValueError, match="n_labelled"):
        evaluate(outputs, inputs, scores, lengths, NAMES, size=M, ks=(5,), n_labelled=50)


@pytest.mark.slow
def test_observed_mask_drops_unanswered_outputs(data: Data) -> None:
    """An output a model did not give is a missing score, whatever the table says."""
    outputs, inputs, scores, lengths = data
    observed = np.ones(scores.shape, bool)
    observed[:20, 0] = False
    masked = scores.copy()
    masked[:20, 0] = np.nan
    kwargs = {"ensembles": 3, "size": 4, "ks": (5,), "n_labelled": 20}
    got = evaluate(outputs, inputs, scores, lengths, NAMES, observed=observed, **kwargs)
    want = evaluate(outputs, inputs, masked, lengths, NAMES, **kwargs)
    assert got.to_json() == want.to_json()
    with pytest.raises(ValueError, match="observed must be a bool array"):
        evaluate(outputs, inputs, scores, lengths, NAMES, observed=observed.astype(int))


@pytest.mark.slow
def test_costs_give_the_train_time_frontier(data: Data) -> None:
    costs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    got = evaluate(*data, NAMES, ensembles=2, ks=(5,), n_labelled=20, costs=costs)
    tradeoffs = [t for t, _, _ in got.frontier]
    assert tradeoffs == sorted(tradeoffs) and tradeoffs[0] == 0.0
    mean_costs = [c for _, c, _ in got.frontier]
    assert np.all(np.diff(mean_costs) <= 1e-9)  # a larger trade-off never costs more
    # Quality only: the recommended router's choices, so its train-time row.
    auto = got.method(AUTO_ROUTER, TRAIN_TIME).mean
    assert got.frontier[0][2] == pytest.approx(auto)
    with pytest.raises(ValueError, match="costs must be"):
        evaluate(*data, NAMES, costs=[1.0] * (M - 1))


@pytest.mark.slow
def test_progress_bar_runs(data: Data) -> None:
    pytest.importorskip("tqdm")
    got = evaluate(*data, NAMES, ensembles=1, ks=(20,), n_labelled=50, progress=True)
    assert len(got.ensembles) == 1
