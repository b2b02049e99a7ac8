#!/usr/bin/env bash
# The accelerator check, one prepared script (issue: speed on a GPU). Run from the repo
# root on a machine with a GPU whose Python has jax[cuda], equinox, jaxtyping, scipy and
# sentence-transformers; MODEL is a sentence-transformers folder (an fp16 copy of MiniLM
# where weights must be carried), DATA a routing file whose outputs are embedded.
# Each part has its own time limit, so one that fails or hangs leaves the others' figures.
#
#   MODEL=.gpu/minilm16 DATA=.gpu/alpaca_eval_v1_dev.jsonl.gz OUT=/tmp/out bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
part() {  # part NAME SECONDS COMMAND...: runs it, log in $OUT/NAME.log, time and status
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  echo "=== $name (limit $limit s)"
  timeout "$limit" "$@" 2>&1 | grep -v "Loading weights" | tee "$OUT/$name.log"
  echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import jax; print('jax', jax.__version__, jax.devices())"
part fits 110 $py benchmarks/bench_fits.py --n 100000
part embed 100 env XLA_PYTHON_CLIENT_PREALLOCATE=false $py benchmarks/bench_embed.py --model "${MODEL:-minilm}" --device cuda --fp16 \
  --data "${DATA:-}" --n 32000
part gpu 330 $py benchmarks/bench_gpu.py
