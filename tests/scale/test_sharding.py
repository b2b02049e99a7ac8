"""Sharded routing equals single-device routing, on 4 fake CPU devices.

XLA fixes the CPU device count when jax starts, before any test runs, so
`test_suite_on_4_fake_cpu_devices` reruns this file in a fresh Python with
XLA_FLAGS=--xla_force_host_platform_device_count=4; the parent run skips the others.
To run them directly: SMOOTHIE_JAX_EXPECT_DEVICES=4
XLA_FLAGS=--xla_force_host_platform_device_count=4 python -m pytest tests/scale/test_sharding.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from reference import brute_force_knn, grid_points

import smoothie_jax as sj
from smoothie_jax.scale import (
    default_mesh,
    sharded_fit_local,
    sharded_knn,
    sharded_route,
    sharded_router_theta,
)

FAKE_DEVICES = 4
_EXPECT = "SMOOTHIE_JAX_EXPECT_DEVICES"
in_4_device_run = pytest.mark.skipif(
    not os.environ.get(_EXPECT), reason="runs in test_suite_on_4_fake_cpu_devices' subprocess"
)


@pytest.mark.slow
def test_suite_on_4_fake_cpu_devices() -> None:
    if os.environ.get(_EXPECT):
        pytest.skip("this is the 4-device run")
    flags = os.environ.get("XLA_FLAGS", "")
    env = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={FAKE_DEVICES}".strip(),
        "JAX_PLATFORMS": "cpu",
        _EXPECT: str(FAKE_DEVICES),
    }
    root = Path(__file__).resolve().parents[2]  # the repository: its smoothie_jax first
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__))],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " failed" not in result.stdout and " passed" in result.stdout


@in_4_device_run
def test_runs_on_the_expected_devices() -> None:
    expected = int(os.environ.get(_EXPECT, jax.device_count()))
    assert jax.device_count() == expected
    assert default_mesh().devices.size == expected


@in_4_device_run
@pytest.mark.parametrize(("k", "block_size", "tile_size"), [(1, 7, 5), (6, 16, 7), (12, 101, 200)])
def test_sharded_knn_equals_knn_and_brute_force_ties_included(
    k: int, block_size: int, tile_size: int
) -> None:
    # n = 101 is not a multiple of 4 devices, of the blocks or of the tiles.
    points = jnp.asarray(grid_points(0, 101))
    options = dict(include_self=True, block_size=block_size)
    got = sharded_knn(points, points, k, tile_size=tile_size, **options)
    chex.assert_shape(got, (101, k))
    want = sj.knn(points, points, k, search=sj.Search(tile_size=tile_size), **options)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_array_equal(
        np.asarray(got),
        brute_force_knn(np.asarray(points), np.asarray(points), k, include_self=True),
    )


@in_4_device_run
def test_sharded_knn_is_bit_identical_on_float_data() -> None:
    # Random floats: every score is rounded, so only equal matmul shapes give equal order.
    rng = np.random.default_rng(1)
    points = jnp.asarray(rng.normal(size=(2000, 48)), jnp.float32)
    queries = jnp.asarray(rng.normal(size=(333, 48)), jnp.float32)
    np.testing.assert_array_equal(
        np.asarray(sharded_knn(queries, points, 20, block_size=64, tile_size=256)),
        np.asarray(sj.knn(queries, points, 20, block_size=64, search=sj.Search(tile_size=256))),
    )
    np.testing.assert_array_equal(
        np.asarray(sharded_knn(points, points, 20, include_self=True)),
        np.asarray(sj.knn(points, points, 20, include_self=True)),
    )


@in_4_device_run
def test_sharded_fit_local_equals_fit_local() -> None:
    rng = np.random.default_rng(2)
    embeddings = jnp.asarray(rng.normal(size=(501, 4, 16)), jnp.float32)
    inputs = jnp.asarray(rng.normal(size=(501, 8)), jnp.float32)
    got = sharded_fit_local(embeddings, inputs, k=9, block_size=64, tile_size=100)
    want = sj.fit_local(embeddings, inputs, k=9, block_size=64)
    # Same neighbours; the closed form may round differently for another batch shape.
    np.testing.assert_allclose(np.asarray(got.theta), np.asarray(want.theta), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(got.route()), np.asarray(want.route()))


@in_4_device_run
def test_sharded_router_equals_router() -> None:
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(400, 5, 12)).astype(np.float32)
    router = sj.fit_router(embeddings, embeddings[:, 0, :6], k=11, block_size=32)
    queries = jnp.asarray(rng.normal(size=(130, 6)), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(sharded_router_theta(router, queries)),
        np.asarray(router.theta(queries)),
        rtol=1e-6,
    )
    np.testing.assert_array_equal(
        np.asarray(sharded_route(router, queries)), np.asarray(router.route(queries))
    )


@in_4_device_run
def test_one_axis_of_a_2d_mesh_and_odd_device_counts() -> None:
    rng = np.random.default_rng(4)
    points = jnp.asarray(rng.normal(size=(250, 6)), jnp.float32)
    search = sj.Search(tile_size=64)
    want = np.asarray(sj.knn(points, points, 7, include_self=True, block_size=32, search=search))
    devices = np.array(jax.devices())
    meshes = [Mesh(devices[:3], ("ring",))] if len(devices) >= 3 else []
    if len(devices) % 2 == 0:
        meshes.append(Mesh(devices.reshape(2, -1), ("data", "ring")))
    for mesh in meshes:
        got = sharded_knn(
            points,
            points,
            7,
            mesh=mesh,
            axis="ring",
            include_self=True,
            block_size=32,
            tile_size=64,
        )
        np.testing.assert_array_equal(np.asarray(got), want)


@in_4_device_run
def test_bad_arguments_raise() -> None:
    x = jnp.zeros((10, 3))
    with pytest.raises(ValueError, match="axis"):
        sharded_knn(x, x, 2, axis="nope")
    with pytest.raises(ValueError, match="k must be"):
        sharded_knn(x, x, 11)
    with pytest.raises(ValueError, match="include_self"):
        sharded_knn(x[:5], x, 2, include_self=True)
