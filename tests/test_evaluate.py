"""The AlpacaEval-style evaluation: every number is recomputed here with plain loops.

Data: two tasks with opposite model rankings, judge score exp(-mean squared error of the
output), so Smoothie's assumptions hold and the oracle, medoid and Local differ visibly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import _protocol as ev

pytestmark = pytest.mark.slow  # the module fixture runs a whole evaluation

N, M, DIM, INPUT_DIM = 200, 6, 16, 8
NAMES = tuple(f"model-{j}" for j in range(M))
Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def make_data(seed: int = 0, n: int = N) -> Data:
    """(outputs, inputs, scores, lengths) with lengths coarse enough to tie often."""
    rng = np.random.default_rng(seed)
    task = rng.integers(0, 2, n)
    theta = np.array([[4.0, 2.0, 1.0, 0.5, 0.3, 3.0], [0.5, 1.0, 2.0, 4.0, 3.0, 0.3]])[task]
    inputs = rng.normal(size=(2, INPUT_DIM))[task] + 0.1 * rng.normal(size=(n, INPUT_DIM))
    truth = rng.normal(size=(n, 1, DIM))
    outputs = truth + rng.normal(size=(n, M, DIM)) / np.sqrt(2 * theta)[..., None]
    scores = np.exp(-np.mean((outputs - truth) ** 2, axis=-1))
    lengths = 100.0 * rng.integers(1, 4, size=(n, M))
    return outputs.astype(np.float32), inputs.astype(np.float32), scores, lengths


@pytest.fixture(scope="module")
def data() -> Data:
    return make_data()


@pytest.fixture(scope="module")
def result(data: Data) -> ev.EvaluationResult:
    return ev.evaluate(*data, NAMES, ensembles=5, size=5, seed=0, ks=(1, 20), n_labelled=50)


def routed(scores: np.ndarray, rows: tuple[int, ...], choose: dict[int, int]) -> float:
    """100 x mean over `rows` of the score of the model `choose[row]`."""
    return 100 * float(np.mean([scores[i, choose[i]] for i in rows]))


@pytest.mark.slow
def test_split_structure(result: ev.EvaluationResult) -> None:
    assert len(result.ensembles) == 5
    for ens, lab, held in zip(result.ensembles, result.labelled, result.evaluated, strict=True):
        assert len(ens) == len(set(ens)) == 5 and list(ens) == sorted(ens)
        assert all(0 <= j < M for j in ens)
        assert len(lab) == 50 and not set(lab) & set(held)
        assert sorted(lab + held) == list(range(N))  # no NaN: every input is kept
    for split in result.splits:  # train-time: past and new partition the kept inputs
        past, new = set(split.past.tolist()), set(split.new.tolist())
        assert not past & new and sorted(past | new) == list(range(N))
        assert len(past) == N // 2 and set(split.past_labelled.tolist()) <= past
        assert len(split.past_labelled) == 50
    names = lambda regime: [r.name for r in result.methods if r.regime == regime]  # noqa: E731
    assert names(ev.TEST_TIME) == [
        ev.RANDOM,
        ev.BEST_SINGLE,
        ev.ORACLE,
        ev.LONGEST,
        ev.MEDOID,
        ev.GLOBAL,
        ev.local_name(1),
        ev.local_name(20),
        ev.ROUTER,
        ev.BEST_ON_VAL,
        ev.labelled_knn_name(20),
    ]
    assert names(ev.TRAIN_TIME) == [
        ev.RANDOM,
        ev.BEST_SINGLE,
        ev.ORACLE,
        ev.LONGEST_PAST,
        ev.GLOBAL,
        ev.router_name(20),
        ev.AUTO_ROUTER,
        ev.BEST_ON_VAL,
        ev.labelled_knn_name(20),
    ]


def test_reference_baselines_match_loops(data: Data, result: ev.EvaluationResult) -> None:
    _, _, scores, lengths = data
    for e, ens in enumerate(result.ensembles):
        rows = result.evaluated[e]
        model_means = [np.mean([scores[i, j] for i in rows]) for j in ens]
        oracle = 100 * np.mean([max(scores[i, j] for j in ens) for i in rows])
        # Longest output, ties to the lower model index.
        longest = {i: max(ens, key=lambda j, i=i: (lengths[i, j], -j)) for i in rows}
        expected = {
            ev.RANDOM: 100 * np.mean(model_means),
            ev.BEST_SINGLE: 100 * max(model_means),
            ev.ORACLE: oracle,
            ev.LONGEST: routed(scores, rows, longest),
        }
        for name, value in expected.items():
            np.testing.assert_allclose(result.method(name).per_ensemble[e], value, rtol=1e-9)
    # The protocol's ordering holds in every ensemble.
    for e in range(len(result.ensembles)):
        at = {r.name: r.per_ensemble[e] for r in result.methods if r.regime == ev.TEST_TIME}
        assert at[ev.RANDOM] <= at[ev.BEST_SINGLE] <= at[ev.ORACLE]
        assert max(at.values()) == at[ev.ORACLE]


def test_medoid_is_local_k1_and_the_embedding_medoid(
    data: Data, result: ev.EvaluationResult
) -> None:
    outputs, _, scores, _ = data
    assert result.method(ev.MEDOID).per_ensemble == result.method(ev.local_name(1)).per_ensemble
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
            result.method(ev.MEDOID).per_ensemble[e], routed(scores, rows, medoid), rtol=1e-6
        )


def test_smoothie_rows_match_direct_fits(data: Data, result: ev.EvaluationResult) -> None:
    outputs, inputs, scores, _ = data
    hits = 0
    for e, ens in enumerate(result.ensembles):
        rows, cols = result.evaluated[e], list(ens)
        smoothie = sj.fit_global(outputs[:, cols])  # no NaN: fit on every input
        choice = ens[int(smoothie.route())]
        assert result.global_choice[e] == choice
        np.testing.assert_allclose(result.global_weights[e], smoothie.weights, rtol=1e-6)
        np.testing.assert_allclose(
            result.method(ev.GLOBAL).per_ensemble[e],
            routed(scores, rows, dict.fromkeys(rows, choice)),
        )
        local = np.asarray(sj.fit_local(outputs[:, cols], inputs, k=20).route())
        np.testing.assert_allclose(
            result.method(ev.local_name(20)).per_ensemble[e],
            routed(scores, rows, {i: ens[local[i]] for i in rows}),
        )
        means = np.array([np.mean([scores[i, j] for i in rows]) for j in ens])
        assert result.best_model[e] == ens[int(np.argmax(means))]
        best_here = bool(means[ens.index(choice)] == means.max())
        assert result.global_is_best[e] == best_here
        hits += best_here
        assert result.spearman[e] == pytest.approx(ev.spearman(smoothie.weights, means))
    assert result.picked_best == hits
    assert result.mean_spearman == pytest.approx(np.mean(result.spearman))


def test_spearman_matches_scipy_with_ties() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 4, 7).astype(float), rng.normal(size=7)
        expected = stats.spearmanr(x, y).statistic if np.ptp(x) else math.nan
        np.testing.assert_allclose(ev.spearman(x, y), expected)
    assert math.isnan(ev.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


@pytest.mark.slow
def test_seed_makes_results_reproducible(data: Data, result: ev.EvaluationResult) -> None:
    again = ev.evaluate(*data, NAMES, ensembles=5, size=5, seed=0, ks=(1, 20), n_labelled=50)
    assert again.to_json() == result.to_json()
    other = ev.evaluate(*data, NAMES, ensembles=5, size=5, seed=1, ks=(1, 20), n_labelled=50)
    assert other.ensembles != result.ensembles and other.labelled != result.labelled
    # Earlier draws do not depend on how many ensembles are drawn.
    assert ev.draw_ensembles(M, ensembles=2, size=5, seed=0) == result.ensembles[:2]


@pytest.mark.parametrize("size", [2, M + 1])
def test_size_out_of_range_raises(data: Data, size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        ev.evaluate(*data, NAMES, size=size)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"models": NAMES[:-1]}, "names"),
        ({"models": ("a",) * M}, "unique"),
        ({"n_labelled": N}, "n_labelled"),
        ({"ks": (0,)}, "ks"),
        ({"ensembles": 0}, "ensembles"),
    ],
)
def test_bad_arguments_raise(data: Data, change: dict, match: str) -> None:
    kwargs = {"models": NAMES, **change}
    with pytest.raises(ValueError, match=match):
        ev.evaluate(*data, **kwargs)


def test_bad_score_tables_raise(data: Data) -> None:
    outputs, inputs, scores, lengths = data
    with pytest.raises(ValueError, match="scores must have shape"):
        ev.evaluate(outputs, inputs, scores[:, :-1], lengths, NAMES)
    bad = scores.copy()
    bad[3, 2] = np.inf
    with pytest.raises(ValueError, match="scores contains inf"):
        ev.evaluate(outputs, inputs, bad, lengths, NAMES)
    bad_lengths = lengths.copy()
    bad_lengths[0, 0] = np.nan
    with pytest.raises(ValueError, match="lengths contains NaN"):
        ev.evaluate(outputs, inputs, scores, bad_lengths, NAMES)


@pytest.mark.slow
def test_full_set_is_evaluated_once(data: Data) -> None:
    outputs, inputs, scores, lengths = data
    got = ev.evaluate(
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


def one_ensemble_data(seed: int = 3, n: int = 120) -> Data:
    """Four models, two well separated input clusters; scores set by each test."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n) % 2
    inputs = (10.0 * cluster[:, None] + rng.normal(size=(n, INPUT_DIM))).astype(np.float32)
    outputs = rng.normal(size=(n, 4, DIM)).astype(np.float32)
    return outputs, inputs, np.zeros((n, 4)), np.ones((n, 4))


def run_one(data: Data, **kwargs: object) -> ev.EvaluationResult:
    return ev.evaluate(*data, "abcd", size=4, seed=7, ks=(5,), n_labelled=30, **kwargs)


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
    assert got.method(ev.BEST_SINGLE).per_ensemble == (100.0,)
    assert got.method(ev.BEST_ON_VAL).per_ensemble == (0.0,)
    assert got.method(ev.labelled_knn_name(5)).per_ensemble == (0.0,)


def test_labelled_baselines_split_ties_evenly() -> None:
    outputs, inputs, scores, lengths = one_ensemble_data()
    labelled = list(run_one((outputs, inputs, scores, lengths), knn_labelled_k=5).labelled[0])
    # Models a and b tie on every labelled input; b is right on every held-out one. The
    # first column's win (argmax) would read the column order, not the labels.
    scores = np.zeros_like(scores)
    scores[:, 1] = 1.0
    scores[labelled] = [1.0, 1.0, 0.0, 0.0]
    got = run_one((outputs, inputs, scores, lengths), knn_labelled_k=5)
    assert got.method(ev.BEST_ON_VAL).per_ensemble == (50.0,)
    assert got.method(ev.labelled_knn_name(5)).per_ensemble == (50.0,)
    np.testing.assert_allclose(
        ev.tied_best(np.array([[2.0, 2.0, 1.0], [0.0, 1.0, 1.0]])),
        [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]],
    )


def test_labelled_knn_routes_by_neighbourhood() -> None:
    outputs, inputs, scores, lengths = one_ensemble_data()
    cluster = np.arange(len(scores)) % 2
    scores = np.zeros_like(scores)
    scores[cluster == 0, 0] = 1.0  # a is right on cluster 0, b on cluster 1
    scores[cluster == 1, 1] = 1.0
    got = run_one((outputs, inputs, scores, lengths), knn_labelled_k=5)
    assert got.method(ev.labelled_knn_name(5)).per_ensemble == (100.0,)
    assert got.method(ev.ORACLE).per_ensemble == (100.0,)
    assert got.method(ev.BEST_ON_VAL).mean < 60
    # knn_labelled_k above n_labelled is clipped, and the row is named by the k used.
    clipped = run_one((outputs, inputs, scores, lengths), knn_labelled_k=100)
    assert clipped.methods[-1].name == ev.labelled_knn_name(30)
    assert any("clipped" in note for note in clipped.notes)


def test_no_labels_scores_every_kept_input(data: Data) -> None:
    got = ev.evaluate(*data, NAMES, ensembles=2, ks=(20,), n_labelled=0)
    assert got.labelled == ((), ())
    assert all(len(rows) == N for rows in got.evaluated)
    assert [r for r in got.methods if r.kind == ev.LABELLED] == []
    assert "labelled inputs are never scored" not in got.to_text()


@pytest.mark.slow
def test_nan_scores_drop_inputs_per_ensemble(data: Data) -> None:
    outputs, inputs, scores, lengths = data
    scores = scores.copy()
    scores[:20, 0] = np.nan  # model-0 missed the first 20 inputs
    got = ev.evaluate(
        outputs, inputs, scores, lengths, NAMES, ensembles=6, size=4, ks=(190,), n_labelled=50
    )
    assert any(0 in ens for ens in got.ensembles) and any(0 not in ens for ens in got.ensembles)
    for e, ens in enumerate(got.ensembles):
        kept = sorted(got.labelled[e] + got.evaluated[e])
        assert kept == list(range(20 if 0 in ens else 0, N))
        rows = got.evaluated[e]
        means = [np.mean([scores[i, j] for i in rows]) for j in ens]
        np.testing.assert_allclose(got.method(ev.RANDOM).per_ensemble[e], 100 * np.mean(means))
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
        ev.evaluate(outputs, inputs, scores, lengths, NAMES, size=M, ks=(5,), n_labelled=50)


def test_table_json_and_png(result: ev.EvaluationResult, tmp_path: Path) -> None:
    text = result.to_text(per_ensemble=True)
    assert all(r.name in text for r in result.methods) and "e4" in text
    assert f"picked the ensemble's best model in {result.picked_best} of 5" in str(result)

    out = tmp_path / "nested" / "result.json"
    sj.eval.write_json(result, out)

    def no_nan(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    loaded = json.loads(out.read_text(), parse_constant=no_nan)
    assert [m["name"] for m in loaded["methods"]] == [r.name for r in result.methods]
    for row, saved in zip(result.methods, loaded["methods"]):
        gap = result.gap_closure(row.name, row.regime)
        assert saved["gap_closure_per_ensemble"] == pytest.approx(gap)
        assert saved["below_random"] == result.below_random(row.name, row.regime)
    assert loaded["ensembles"][0]["evaluated"] == list(result.evaluated[0])

    png = tmp_path / "nested" / "result.png"
    sj.eval.plot_evaluation(result, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in png.parent.iterdir()) == ["result.json", "result.png"]


def test_progress_bar_runs(data: Data) -> None:
    pytest.importorskip("tqdm")
    got = ev.evaluate(*data, NAMES, ensembles=1, ks=(20,), n_labelled=50, progress=True)
    assert len(got.ensembles) == 1


def test_gap_closure_and_below_random(result: ev.EvaluationResult) -> None:
    for regime in ev.REGIMES:
        low = np.array(result.method(ev.RANDOM, regime).per_ensemble)
        high = np.array(result.method(ev.BEST_SINGLE, regime).per_ensemble)
        for row in result.methods:
            if row.regime != regime:
                continue
            score = np.array(row.per_ensemble)
            np.testing.assert_allclose(
                result.gap_closure(row.name, regime), (score - low) / (high - low)
            )
            assert result.below_random(row.name, regime) == int(np.sum(score < low - 1e-9))
        assert result.gap_closure(ev.RANDOM, regime) == pytest.approx((0.0,) * 5)
        assert result.gap_closure(ev.BEST_SINGLE, regime) == pytest.approx((1.0,) * 5)
    assert "G" in result.to_text() and "train-time" in result.to_text()


def test_train_time_rows_match_direct_fits(data: Data, result: ev.EvaluationResult) -> None:
    outputs, inputs, scores, lengths = data
    for e, split in enumerate(result.splits):
        cols = list(split.models)
        past, new = split.past, split.new
        router = sj.fit_router(outputs[past][:, cols], inputs[past], k=20)
        route = np.asarray(router.route(inputs[new]))
        want = 100 * np.mean(scores[new][:, cols][np.arange(len(new)), route])
        got = result.method(ev.router_name(20), ev.TRAIN_TIME).per_ensemble[e]
        assert got == pytest.approx(want, rel=1e-9)
        longest = int(np.argmax(lengths[past][:, cols].mean(axis=0)))
        got = result.method(ev.LONGEST_PAST, ev.TRAIN_TIME).per_ensemble[e]
        assert got == pytest.approx(100 * scores[new][:, cols][:, longest].mean())
        # Labelled baselines read only scored past inputs.
        lab = scores[split.past_labelled][:, cols].mean(axis=0)
        tied = lab == lab.max()  # ties split evenly
        got = result.method(ev.BEST_ON_VAL, ev.TRAIN_TIME).per_ensemble[e]
        assert got == pytest.approx(100 * scores[new][:, cols][:, tied].mean())


def test_with_rows_adds_rows_in_their_regime(result: ev.EvaluationResult) -> None:
    extra = ev.MethodResult("mine", ev.LABEL_FREE, (1.0,) * 5, ev.TEST_TIME)
    late = ev.MethodResult("mine later", ev.LABEL_FREE, (2.0,) * 5, ev.TRAIN_TIME)
    more = result.with_rows([late, extra])
    test_rows = [r.name for r in more.methods if r.regime == ev.TEST_TIME]
    assert test_rows[-1] == "mine" and more.method("mine later", ev.TRAIN_TIME).mean == 2.0
    assert more.methods.index(more.method("mine")) < more.methods.index(
        more.method(ev.RANDOM, ev.TRAIN_TIME)
    )
    with pytest.raises(ValueError, match="values for 5 ensembles"):
        result.with_rows([ev.MethodResult("short", ev.LABEL_FREE, (1.0,))])
