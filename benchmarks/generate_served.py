"""Served generation: in-process vs `medsyn serve` through medsyn vs a bare asyncio loop, and a simulated fleet.

    python benchmarks/generate_served.py [--tasks 32 --max_new_tokens 64 --in_flight 1 8 32 64 --fleet 32 64 128]

Part 1, on the embedded model (Gemma 3 270M with its packaged adapter merged), the same instruction prompts:
- the in-process transformers backend at batch 16 (its best batch on 2 cores, see `generate_cpu`);
- `medsyn serve` (transformers serve, continuous batching) driven by medsyn's endpoint backend at 1, 8, 32 and 64
  requests in flight: routing, retries, seeds, parsing, everything the job uses;
- the same requests fired by a bare asyncio + httpx loop with no medsyn logic (the engine's own ceiling).
No stop strings and no repetition penalty, so every system does the same decoding work per token.

Part 2, a simulated fleet: 32 to 128 `medsyn.serving.sim` engines on loopback, one process each, each answering in
`ttft + tokens / rate` seconds. It shows how many endpoints one medsyn process keeps saturated on this machine,
and the CPU it spends per request. Results go to benchmarks/RESULTS.md (section `generate_served`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prompts_for(n: int) -> list[str]:
    from medsyn.kg import load_graph
    from medsyn.prompts import get_prompt_builder
    from medsyn.sampling import TaskSampler

    builder = get_prompt_builder("instruction")
    return [builder.text(t.to_dict()) for t in TaskSampler(load_graph(), seed=0).sample(n)]


def in_process(prompts: list[str], params, batch: int) -> tuple[float, int]:
    from medsyn.backends import get_backend

    backend = get_backend("transformers", model=None, adapter="auto", dtype="bfloat16", device="cpu")
    from medsyn.generator import resolve_adapter

    backend.adapter = resolve_adapter("gemma-3-270m", "auto")
    backend.load()
    backend.generate(prompts[:1], type(params)(max_new_tokens=4, stop=[]), seed=0)  # warm-up
    started, tokens = time.perf_counter(), 0
    for i in range(0, len(prompts), batch):
        seeds = list(range(i, i + len(prompts[i : i + batch])))
        tokens += sum(g.completion_tokens for g in backend.generate(prompts[i : i + batch], params, seeds=seeds))
    return time.perf_counter() - started, tokens


async def through_medsyn(url: str, prompts: list[str], params, in_flight: int) -> tuple[float, int]:
    from medsyn.backends.endpoint import EndpointBackend

    backend = EndpointBackend([url], prompt_format="text", max_concurrency=in_flight, timeout=600)
    await asyncio.to_thread(backend.load)
    started = time.perf_counter()
    out = await asyncio.gather(*(backend.agenerate(p, params, seed=i) for i, p in enumerate(prompts)))
    elapsed = time.perf_counter() - started
    await backend.aclose()
    return elapsed, sum(g.completion_tokens for g in out)


async def bare_loop(url: str, model: str, prompts: list[str], params, in_flight: int) -> tuple[float, int]:
    from medsyn.backends.endpoint import _httpx, engine_fields

    httpx = _httpx()
    sem = asyncio.Semaphore(in_flight)
    body = {"model": model, **engine_fields("transformers", params, chat=False)}  # the very body medsyn sends

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=None)) as client:

        async def one(i: int, prompt: str) -> int:
            async with sem:
                r = await client.post(f"{url}/v1/completions", json=body | {"prompt": prompt, "seed": i})
                return r.json()["usage"]["completion_tokens"]

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
        return time.perf_counter() - started, sum(tokens)


def start_medsyn_serve(port: int) -> subprocess.Popen:
    from medsyn.serving.serve import wait_ready

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "medsyn.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}", 600, proc)
    return proc


def rss_mb(pid: int) -> float:
    """Peak resident memory of the engine: the largest VmHWM among ``pid`` and its children (the real server)."""
    import psutil

    peaks = []
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        with open(f"/proc/{proc.pid}/status") as fh:
            peaks += [int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM")]
    return max(peaks)


def part_engine(args, rows: list[str]) -> None:
    import torch

    from medsyn.backends import GenerationParams
    from medsyn.backends.endpoint import _httpx

    torch.set_num_threads(2)
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=0.8, repetition_penalty=1.0, stop=[])
    prompts = prompts_for(max(args.tasks, max(args.in_flight) * 2))
    base = prompts[: args.tasks]
    t, tok = in_process(base, params, 16)
    inproc_notes = len(base) / t
    rows.append(f"| in-process transformers backend, batch 16 | {len(base)} | {inproc_notes:.2f} | {tok / t:.1f} | |")
    print(rows[-1], flush=True)
    port = free_port()
    proc = start_medsyn_serve(port)
    url = f"http://127.0.0.1:{port}"
    model = _httpx().get(f"{url}/v1/models").json()["data"][0]["id"]
    try:
        asyncio.run(through_medsyn(url, prompts[:4], params, 4))  # warm-up: load, first CB batch
        for c in args.in_flight:
            n = min(len(prompts), max(16, 2 * c))
            if c < 8:
                t, tok = asyncio.run(through_medsyn(url, prompts[:n], params, c))
                rows.append(f"| `medsyn serve` through medsyn, {c} in flight | {n} | {n / t:.2f} | {tok / t:.1f} | |")
                print(rows[-1], flush=True)
                continue
            # ABBA order (medsyn, bare, bare, medsyn) so that drift of the server hits both sides alike
            t = tok = bt = btok = 0.0
            for system in ("medsyn", "bare", "bare", "medsyn"):
                if system == "medsyn":
                    dt, dtok = asyncio.run(through_medsyn(url, prompts[:n], params, c))
                    t, tok = t + dt, tok + dtok
                else:
                    dt, dtok = asyncio.run(bare_loop(url, model, prompts[:n], params, c))
                    bt, btok = bt + dt, btok + dtok
            line = (
                f"| `medsyn serve` through medsyn, {c} in flight | 2 × {n} | {2 * n / t:.2f} | {tok / t:.1f} | "
                f"{2 * n / bt:.2f} notes/s, {btok / bt:.1f} tok/s; medsyn/bare {tok / t / (btok / bt):.1%} |"
            )
            rows.append(line)
            print(line, flush=True)
        rows.append(f"\nServer peak RSS: {rss_mb(proc.pid):,.0f} MB (transformers serve on the merged 270M model).")
    finally:
        proc.terminate()
        proc.wait()
    rows.append(f"In-process backend at batch 16: {inproc_notes:.2f} notes/s.")


def part_fleet(args, rows: list[str]) -> None:
    from medsyn.backends import GenerationParams
    from medsyn.backends.endpoint import EndpointBackend, _httpx

    ttft, rate, tokens, per = 0.05, 50.0, 64, args.per_endpoint
    latency = ttft + tokens / rate
    params = GenerationParams(max_new_tokens=tokens, temperature=0.8, stop=[])
    rows.append(
        f"\nSimulated fleet: each engine answers in {latency:.2f} s ({ttft} s + {tokens} tokens at {rate:g} tok/s), "
        f"medsyn keeps {per} requests in flight per endpoint.\n"
    )
    rows.append("| endpoints | requests | requests/s | ideal requests/s | saturation | medsyn CPU ms/request |")
    rows.append("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n_eps in args.fleet:
        ports = [free_port() for _ in range(n_eps)]
        cmd = [sys.executable, "-m", "medsyn.serving.sim", "--ttft", str(ttft), "--tokens_per_s", str(rate)]
        procs = [subprocess.Popen([*cmd, "--port", str(p)]) for p in ports]
        try:
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            for u in urls:
                for _ in range(300):
                    try:
                        _httpx().get(f"{u}/v1/models", timeout=1)
                        break
                    except Exception:  # noqa: BLE001 - not up yet
                        time.sleep(0.1)
            backend = EndpointBackend(urls, prompt_format="text", max_concurrency=per, timeout=60)
            backend.load()
            n_requests = n_eps * per * args.rounds

            async def run(backend: EndpointBackend, n_requests: int) -> float:
                # the job's shape: a bounded pool of workers, one request each at a time
                queue = list(range(n_requests))

                async def worker() -> None:
                    while queue:
                        i = queue.pop()
                        await backend.agenerate(f"Жалобы {i}", params, seed=i)

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(backend.max_in_flight)))
                elapsed = time.perf_counter() - started
                await backend.aclose()
                return elapsed

            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            elapsed = asyncio.run(run(backend, n_requests))
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            ideal = n_eps * per / latency
            line = (
                f"| {n_eps} | {n_requests:,} | {n_requests / elapsed:,.0f} | {ideal:,.0f} | "
                f"{n_requests / elapsed / ideal:.0%} | {1000 * cpu / n_requests:.2f} |"
            )
            rows.append(line)
            print(line, flush=True)
        finally:
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--in_flight", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--fleet", type=int, nargs="*", default=[32, 64, 128])
    parser.add_argument("--per_endpoint", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--skip_engine", action="store_true", help="only the simulated fleet")
    args = parser.parse_args()

    rows = ["## Served generation (`benchmarks/generate_served.py`)\n"]
    if not args.skip_engine:
        rows.append(
            f"Embedded model (Gemma 3 270M + packaged adapter, merged, bf16), instruction prompts, "
            f"{args.max_new_tokens} new tokens, no stop strings, 2 CPU threads.\n"
        )
        rows.append("| system | requests | notes/s | tokens/s | bare asyncio loop, same requests |")
        rows.append("| --- | ---: | ---: | ---: | --- |")
        part_engine(args, rows)
    if args.fleet:
        part_fleet(args, rows)
    write_section("generate_served", "\n".join(rows))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
