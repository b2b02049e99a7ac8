"""The gateway's speed: decision latency for one query (embedding included), and
throughput under load against fake upstreams on loopback, errors counted.

The router is the quiz's (examples/data/quiz_train.jsonl, MiniLM recorded as its
embedder); `--past N` adds N synthetic past inputs, to see the neighbour search's share.
The gateway runs as its command does (`python -m smoothie_jax serve`, its own
process); the fake upstreams (one per model) and the load generator share this process.

1. decision latency in process: `TextRouter.decide([query])`, one distinct query at a
   time (MiniLM embedding, neighbour search, ranking);
2. decision latency over HTTP: `POST /v1/route`, one request at a time;
3. load: `--requests` chat completions at `--concurrency`, non-streamed then streamed;
   an error is any answer but 200 with the routed model's reply (or a broken stream);
4. malformed load: the same, with 1 request in 10 malformed (a lone surrogate, JSON
   that is not JSON or nests 100,000 deep, an unknown role or model, a body over the
   limit): every valid one must be answered, every malformed one refused with a 4xx.

    python benchmarks/bench_serve.py                     # the README's figures
    python benchmarks/bench_serve.py --past 20000 --requests 1000 [--search approximate]
    python benchmarks/bench_serve.py --runs malformed --requests 1000 --out /tmp/m.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's smoothie_jax, also in the gateway process
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import smoothie_jax as sj  # noqa: E402
from smoothie_jax.serve import EMBED_THREADS  # noqa: E402


def quiz_router(cache: Path, past: int, search: str) -> sj.Router:
    """The quiz router with MiniLM recorded; `past` synthetic inputs added if asked."""
    train = sj.data.read_routing(ROOT / "examples" / "data" / "quiz_train.jsonl")
    m = len(train.models)
    outputs = sj.text.embed([o for row in train.outputs for o in row], cache_dir=cache)
    outputs = outputs.reshape(len(train), m, -1)
    inputs = sj.text.embed(train.instructions, cache_dir=cache)
    if past:
        rng = np.random.default_rng(0)

        def unit(*shape: int) -> np.ndarray:
            x = rng.normal(size=shape).astype(np.float32)
            return x / np.linalg.norm(x, axis=-1, keepdims=True)

        outputs = np.concatenate([outputs, unit(past, m, outputs.shape[-1])])
        inputs = np.concatenate([inputs, unit(past, inputs.shape[-1])])
    return sj.fit_router(
        outputs,
        inputs,
        k=10,
        models=train.models,
        search=search,
        embedder=sj.serve.describe_embedder("minilm"),
    )


def queries(n: int) -> list[str]:
    """n distinct queries (no two alike: nothing is served from a cache)."""
    base = sj.data.read_routing(
        ROOT / "examples" / "data" / "quiz_queries.jsonl", require_outputs=False
    ).instructions
    return [f"{base[i % len(base)]} (case {i})" for i in range(n)]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def in_process_latency(router: sj.Router, texts: list[str]) -> dict[str, float]:
    import torch

    torch.set_num_threads(EMBED_THREADS)  # as the gateway's process does
    decider = sj.serve.TextRouter(router, sj.serve.text_encoder(router.embedder, cache=False))
    for text in texts[:10]:  # loads the model, compiles the routing
        decider.decide([text])
    times = []
    for text in texts:
        start = time.perf_counter()
        decider.decide([text])
        times.append(time.perf_counter() - start)
    return percentiles(times)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gateway(router_path: Path, upstreams: Path, log: Path):  # noqa: ANN201
    """The gateway as its command runs it, in its own process; yields its URL."""
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "smoothie_jax", "serve", "--router"]
    command += [str(router_path), "--upstreams", str(upstreams), "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start in 300 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def http_latency(url: str, texts: list[str]) -> dict[str, float]:
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for text in texts[:10]:
            client.post("/v1/route", json={"prompt": text})
        for text in texts:
            start = time.perf_counter()
            response = client.post("/v1/route", json={"prompt": text})
            times.append(time.perf_counter() - start)
            response.raise_for_status()
    return percentiles(times)


async def load(url: str, texts: list[str], concurrency: int, stream: bool) -> dict:
    """Every text as one chat completion, `concurrency` in flight; errors counted."""
    import httpx

    todo: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        todo.put_nowait(text)
    times: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def ok(client: httpx.AsyncClient, text: str) -> str | None:
        body = {"messages": [{"role": "user", "content": text}], "stream": stream}
        if not stream:
            response = await client.post("/v1/chat/completions", json=body)
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            answer = response.json()
            replied = answer["choices"][0]["message"]["content"]
            return None if replied == f"{answer['model']} answers" else "wrong reply"
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            model = response.headers["x-smoothie-model"]
            pieces = []
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    event = json.loads(line[6:])
                    if "error" in event:
                        return "stream error"
                    pieces.append(event["choices"][0]["delta"]["content"])
            return None if "".join(pieces) == f"{model} answers" else "wrong stream"

    async def worker(client: httpx.AsyncClient) -> None:
        while not todo.empty():
            text = todo.get_nowait()
            start = time.perf_counter()
            try:
                error = await ok(client, text)
            except httpx.HTTPError as e:
                error = type(e).__name__
            times.append(time.perf_counter() - start)
            if error:
                errors.append(error)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {
        "requests": len(texts),
        "concurrency": concurrency,
        "stream": stream,
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(texts) / wall, 1),
        **percentiles(times),
    }


CHAT = "/v1/chat/completions"
MALFORMED = {  # what each malformed request is, and the status it must get
    "lone surrogate": (b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}', 400),
    "not JSON": (b'{"messages": [', 400),
    "nested 100,000 deep": (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    "unknown role": (b'{"messages": [{"role": "boss", "content": "hi"}]}', 400),
    "unknown model": (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}', 404),
    "over --max-body": (
        b'{"messages": [{"role": "user", "content": "' + b"x" * 5_000_000 + b'"}]}',
        413,
    ),
}


async def malformed_load(url: str, texts: list[str], concurrency: int, every: int = 10) -> dict:
    """`texts` as chat completions with one request in `every` malformed (the kinds in
    turn), `concurrency` in flight: valid ones must be answered with their routed
    model's reply, malformed ones refused with their 4xx."""
    import httpx

    kinds = list(MALFORMED)
    todo: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for i, text in enumerate(texts):
        todo.put_nowait((i, text))
    valid_times: list[float] = []
    valid_errors: list[str] = []
    refused: dict[str, int] = {}
    wrong: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while not todo.empty():
            i, text = todo.get_nowait()
            headers = {"content-type": "application/json"}
            if i % every == every - 1:
                kind = kinds[(i // every) % len(kinds)]
                body, status = MALFORMED[kind]
                try:
                    response = await client.post(
                        "/v1/chat/completions", content=body, headers=headers
                    )
                    ok = response.status_code == status and "error" in response.json()
                except (httpx.HTTPError, ValueError) as e:
                    ok, response = False, type(e).__name__
                if ok:
                    refused[kind] = refused.get(kind, 0) + 1
                else:
                    wrong.append(f"{kind}: {getattr(response, 'status_code', response)}")
                continue
            start = time.perf_counter()
            body = json.dumps({"messages": [{"role": "user", "content": text}]}).encode()
            try:
                response = await client.post(CHAT, content=body, headers=headers)
                if response.status_code != 200:
                    error = f"HTTP {response.status_code}"
                else:
                    answer = response.json()
                    replied = answer["choices"][0]["message"]["content"]
                    error = None if replied == f"{answer['model']} answers" else "wrong reply"
            except httpx.HTTPError as e:
                error = type(e).__name__
            valid_times.append(time.perf_counter() - start)
            if error:
                valid_errors.append(error)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    n_malformed = sum(1 for i in range(len(texts)) if i % every == every - 1)
    return {
        "requests": len(texts),
        "concurrency": concurrency,
        "malformed": n_malformed,
        "valid": len(texts) - n_malformed,
        "valid_answered": len(valid_times) - len(valid_errors),
        "valid_errors": len(valid_errors),
        "valid_error_kinds": sorted(set(valid_errors)),
        "malformed_refused": refused,
        "malformed_answered_wrongly": wrong,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(texts) / wall, 1),
        **percentiles(valid_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="chat completions per run")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--latency-queries", type=int, default=300, help="queries timed one by one")
    parser.add_argument("--past", type=int, default=0, help="synthetic past inputs to add")
    parser.add_argument("--search", default="exact", help="the router's neighbour search")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    parser.add_argument(
        "--runs",
        default="latency,load,stream,malformed",
        help="which runs, comma-separated: latency (in process and over HTTP), load, "
        "stream, malformed (1 request in 10 malformed)",
    )
    args = parser.parse_args()
    runs = set(args.runs.split(","))
    if runs - {"latency", "load", "stream", "malformed"}:
        parser.error(f"unknown runs: {sorted(runs - {'latency', 'load', 'stream', 'malformed'})}")

    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    router = quiz_router(work / "cache", args.past, args.search)
    sj.save_router(work / "router.eqx", router)
    texts = queries(args.latency_queries + args.requests)
    result: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "router": f"quiz ({router.n_samples} past inputs, {router.n_models} models, k=10, "
        f"{router.search.method} search)",
        "embedder": router.embedder.describe(),
    }
    if "latency" in runs:
        result["decide_in_process"] = in_process_latency(router, texts[: args.latency_queries])
        print("decision in process (MiniLM + routing):", result["decide_in_process"])

    with contextlib.ExitStack() as stack:
        lines = []
        for name in router.models:
            app = sj.serve.fake_upstream(f"{name} answers")
            url = stack.enter_context(sj.serve.serve_in_thread(app))
            lines.append(f'[models.{name}]\nbase_url = "{url}/v1"\nmodel = "fake-{name}"\n')
        (work / "upstreams.toml").write_text("\n".join(lines))
        url = stack.enter_context(
            gateway(work / "router.eqx", work / "upstreams.toml", work / "log")
        )
        if "latency" in runs:
            result["route_over_http"] = http_latency(url, texts[: args.latency_queries])
            print("POST /v1/route, one at a time:", result["route_over_http"])
        rest = texts[args.latency_queries :]
        for stream in (False, True):
            if ("stream" if stream else "load") not in runs:
                continue
            key = "load_stream" if stream else "load"
            result[key] = asyncio.run(load(url, rest, args.concurrency, stream))
            print(
                f"chat completions under load ({'streamed' if stream else 'whole'}):", result[key]
            )
        if "malformed" in runs:
            result["load_malformed"] = asyncio.run(malformed_load(url, rest, args.concurrency))
            print("chat completions under load, 1 in 10 malformed:", result["load_malformed"])
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
