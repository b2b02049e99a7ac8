"""Multi-process sharded routing equals the single-process result.

Each process owns only its rows: it builds global arrays with
`jax.make_array_from_process_local_data`, runs `sharded_knn` and `sharded_fit_local` on
the mesh of every process's devices, and gathers the result to compare with `knn` and
`fit_local` on the whole data.

    python benchmarks/multihost_check.py                 # 2 local processes x 2 CPU devices
    srun -N 2 python benchmarks/multihost_check.py --worker   # a SLURM cluster, 1 task/node

On a cluster `jax.distributed.initialize()` reads the process count, id and coordinator
from SLURM (or Open MPI, or TPU pod metadata); elsewhere set them as the local run does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def worker(coordinator: str | None, n_processes: int | None, process_id: int | None) -> int:
    import jax
    import numpy as np

    if jax.config.jax_platforms in (None, "", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives
    if coordinator is None:
        jax.distributed.initialize()  # SLURM / Open MPI / TPU: everything from the env
    else:
        jax.distributed.initialize(coordinator, n_processes, process_id)
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import smoothie_jax as sj
    from smoothie_jax.scale import default_mesh, sharded_fit_local, sharded_knn

    mesh = default_mesh()
    me, count = jax.process_index(), jax.process_count()
    n, k = 1200 * count, 10
    rng = np.random.default_rng(0)  # every process can make the whole set; keeps its rows
    inputs = rng.normal(size=(n, 16)).astype(np.float32)
    embeddings = rng.normal(size=(n, 4, 8)).astype(np.float32)
    mine = slice(me * n // count, (me + 1) * n // count)
    rows = NamedSharding(mesh, P(mesh.axis_names[0]))
    x = jax.make_array_from_process_local_data(rows, inputs[mine], inputs.shape)
    e = jax.make_array_from_process_local_data(rows, embeddings[mine], embeddings.shape)

    ids = sharded_knn(x, x, k, include_self=True)
    theta = sharded_fit_local(e, x, k=k).theta
    ids, theta = (multihost_utils.process_allgather(a, tiled=True) for a in (ids, theta))
    same_ids = bool(np.all(ids == np.asarray(sj.knn(inputs, inputs, k, include_self=True))))
    rel = float(np.max(np.abs(theta / np.asarray(sj.fit_local(embeddings, inputs, k=k).theta) - 1)))
    print(
        f"process {me}/{count}: {jax.device_count()} devices; neighbours identical to one "
        f"process: {same_ids}; theta max relative difference {rel:.1e}",
        flush=True,
    )
    jax.distributed.shutdown()
    return 0 if same_ids and rel < 1e-5 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help="run as one process of a job")
    parser.add_argument("--coordinator", default=None, help="host:port of process 0")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--process-id", type=int, default=None)
    parser.add_argument("--local-devices", type=int, default=2, help="CPU devices per process")
    args = parser.parse_args()
    if args.worker:
        sys.exit(worker(args.coordinator, args.processes, args.process_id))

    # Local launch: the same command a cluster runs once per host, with explicit ids.
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={args.local_devices}",
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                "--coordinator",
                "localhost:12355",
                "--processes",
                str(args.processes),
                "--process-id",
                str(i),
            ],
            env=env,
        )  # fmt: skip
        for i in range(args.processes)
    ]
    sys.exit(max(p.wait() for p in procs))


if __name__ == "__main__":
    main()
