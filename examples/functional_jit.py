"""Smoothie's stages are pure JAX functions: compose them in your own jit, then vmap it.

Writes Smoothie-Local out stage by stage (sample_distances -> knn -> neighbour_mean ->
theta_from_distances) inside one user-level `jax.jit`, checks it against `sj.fit_local`,
and routes a batch of 8 simulated two-task data sets in one vmapped call.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

import smoothie_jax as sj

K = 20  # neighbours; a Python constant, so it stays static under jit


@jax.jit
def local_route(
    outputs: Float[Array, "n m dim"], inputs: Float[Array, "n input_dim"]
) -> Int[Array, " n"]:
    """Index of the best model for each input, from its K nearest inputs."""
    distances = sj.sample_distances(outputs)  # (n, m, m): the only per-sample statistic
    neighbours = sj.knn(inputs, inputs, K, include_self=True)  # (n, K)
    smoothed = sj.neighbour_mean(distances, neighbours)  # (n, m, m)
    theta = jax.vmap(lambda d: sj.theta_from_distances(d, outputs.shape[-1]))(smoothed)
    return jnp.argmax(theta, axis=-1)


# Two tasks with opposite model rankings, as in `smoothie-jax demo`.
task_theta = jnp.array([[2.0, 1.4, 1.0, 0.7], [0.7, 1.0, 1.4, 2.0]])

keys = jax.random.split(jax.random.key(0), 8)  # 8 data sets of 400 inputs, 4 models each
outputs, inputs, task = jax.vmap(
    lambda key: sj.simulate_tasks(key, task_theta, n_samples=400, dim=8, input_dim=16)
)(keys)
print(f"batch of data sets: outputs {outputs.shape}, inputs {inputs.shape}")
one = local_route(outputs[0], inputs[0])
assert bool(jnp.all(one == sj.fit_local(outputs[0], inputs[0], k=K).route()))
print("hand-written local_route matches sj.fit_local on data set 0")

routes = jax.vmap(local_route)(outputs, inputs)  # (8, n): one compiled call for all 8
best = jnp.argmax(task_theta[task], axis=-1)  # the true best model of each input
for b, hit in enumerate(jnp.mean(routes == best, axis=-1)):
    print(f"data set {b}: true best model chosen for {100 * float(hit):.1f}% of inputs")
