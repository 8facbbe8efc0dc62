"""The generation client alone: `medsyn generate` processes against a simulated fleet that costs little itself.

    python benchmarks/fleet_clients.py [--fleets 64 128 --clients 1 2 4 --per_endpoint 32 --memory_n 100000]

The fleet is `python -m medsyn.serving.sim --fleet N`: N simulated OpenAI-compatible engines on N loopback ports in
one process and one event loop. A request takes `ttft + tokens / rate` seconds on average, times a factor drawn from
0.75 … 1.25 by its seed (real engines do not answer a batch all at once), and requests do not slow each other, so the
ideal rate is `endpoints × in flight / mean seconds per request`. The fleet's own CPU is measured and
reported beside the clients'.

Each row runs whole `medsyn generate` jobs (sampling, prompts, routing, retries, the shard files, the dataset files),
with the filter off so that every task is one request. With K clients the job is split with `--shard i/K` and each
client keeps `per_endpoint / K` requests in flight per endpoint, so the fleet sees the same load. Per client it reads
the job's own summary: generation seconds, notes, and `cpu_s`, the process's CPU over the generation (loading and the
dataset files left out); its peak RSS comes from /proc.

The memory rows run one client on growing `--n` (up to `--memory_n`), with its peak RSS over the whole run.
Results go to benchmarks/RESULTS.md (section `fleet_clients`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.results import write_section  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Fleet:
    """The simulated fleet in its own process, with its fleet file."""

    def __init__(self, endpoints: int, ttft: float, tokens_per_s: float, folder: Path, jitter: float = 0.25) -> None:
        self.file = folder / f"fleet-{endpoints}.txt"
        cmd = [sys.executable, "-m", "medsyn.serving.sim", "--fleet", str(endpoints), "--fleet_file", str(self.file)]
        cmd += ["--ttft", str(ttft), "--tokens_per_s", str(tokens_per_s), "--jitter", str(jitter)]
        self.proc = subprocess.Popen(cmd)
        deadline = time.time() + 120
        while not self.file.exists():
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the simulated fleet did not start")
            time.sleep(0.1)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run_clients(fleet: Fleet, clients: int, per_endpoint: int, n: int, tokens: int, out: Path) -> dict:
    """K sharded `medsyn generate` processes at once on one job; their summaries, peak RSS and the fleet's CPU."""
    base = [sys.executable, "-m", "medsyn.cli", "generate", "--endpoint", str(fleet.file), "--n", str(n)]
    base += ["--out", str(out), "--filter", "false", "--template", "instruction", "--seed", "0"]
    base += ["--max_new_tokens", str(tokens), "--max_concurrency", str(per_endpoint // clients), "--timeout", "120"]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    fleet_cpu0 = fleet.cpu()
    started = time.perf_counter()
    procs = []
    for i in range(clients):
        shard = ["--shard", f"{i}/{clients}"] if clients > 1 else []
        log = (out.parent / f"{out.name}-{i}.log").open("wb")
        procs.append(subprocess.Popen([*base, *shard], env=env, stdout=subprocess.PIPE, stderr=log))
    peaks = [0.0] * clients
    while any(p.poll() is None for p in procs):
        for i, p in enumerate(procs):
            if p.poll() is None:
                try:
                    peaks[i] = max(peaks[i], peak_rss_mb(p.pid))
                except OSError:
                    pass
        time.sleep(0.2)
    wall = time.perf_counter() - started
    summaries = []
    for i, p in enumerate(procs):
        out_text = p.stdout.read().decode()
        if p.returncode != 0:
            tail = (out.parent / f"{out.name}-{i}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"client {i} failed ({p.returncode}):\n{tail}")
        summaries.append(json.loads(out_text[out_text.index("{") :]))
    return {"summaries": summaries, "peaks": peaks, "fleet_cpu": fleet.cpu() - fleet_cpu0, "wall": wall}


def steady_rate(out: Path, request_s: float) -> float:
    """Notes per second while every client keeps the fleet full.

    Per client (its own shard files), the window runs from one request time after its first note to one before its
    last (the rows' ``created_at``, whole seconds); the rate counts every note written while all the windows overlap.
    """
    from datetime import datetime

    from medsyn.job import shard_lines

    per_client: dict[str, list[float]] = {}
    for part, _, record in shard_lines(out / "shards"):
        tag = part.stem.split("-", 2)[2] if part.stem.count("-") == 2 else "all"
        per_client.setdefault(tag, []).append(datetime.fromisoformat(record["created_at"]).timestamp())
    start = max(min(t) for t in per_client.values()) + request_s + 1
    end = min(max(t) for t in per_client.values()) - request_s - 1
    if end - start < request_s:
        raise RuntimeError("the run is too short for a steady window; raise --rounds")
    return sum(start <= t < end for times in per_client.values() for t in times) / (end - start)


def throughput_row(endpoints: int, clients: int, result: dict, ideal: float, steady: float) -> str:
    s = result["summaries"]
    notes = sum(x["kept"] + x["rejected"] for x in s)
    # the clients start together and share the fleet: the job's rate is the sum of theirs
    rate = sum((x["generated_now"] / x["seconds"]) for x in s if x["seconds"])
    cpu_ms = 1000 * sum(x["cpu_s"] for x in s) / max(1, sum(x["generated_now"] for x in s))
    fleet_ms = 1000 * result["fleet_cpu"] / max(1, notes)
    return (
        f"| {endpoints} × {result['per_endpoint']} | {clients} | {notes:,} | {ideal:,.0f} | {steady:,.0f} | "
        f"{steady / ideal:.1%} | {rate:,.0f} ({rate / ideal:.0%}) | {cpu_ms:.2f} | {max(result['peaks']):,.0f} | "
        f"{fleet_ms:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleets", type=int, nargs="*", default=[64, 128], help="none: only the memory rows")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--per_endpoint", type=int, default=32)
    parser.add_argument("--rounds", type=float, default=8.0, help="requests per run, in multiples of the fleet's")
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--tokens_per_s", type=float, default=8.0, help="per request: 64 / 8 = 8 s a request")
    parser.add_argument("--memory_n", type=int, nargs="*", default=[10_000, 30_000, 100_000])
    parser.add_argument("--memory_fleet", type=int, default=64)
    parser.add_argument("--memory_tokens_per_s", type=float, default=32.0)
    args = parser.parse_args()

    seconds = args.ttft + args.tokens / args.tokens_per_s
    rows = [
        f"Simulated fleet in one process; a request takes {seconds:g} s on average ({args.ttft:g} s + {args.tokens} "
        f"tokens at {args.tokens_per_s:g} tok/s, ±25% by request); {args.per_endpoint} requests in flight per "
        "endpoint in all; whole "
        "`medsyn generate` jobs with the filter off (one request a task). K clients split the job with "
        "`--shard i/K`, each with `--max_concurrency per_endpoint/K`. Steady: notes/s once the fleet is full (from "
        "one request time after the first note to one before the last, by the rows' `created_at`). Whole run: "
        "notes over each client's generation seconds, summed over the clients, ramp-up and drain included. CPU: the "
        "clients' own over their generation phases, per note.\n",
        "| endpoints × in flight | clients | notes | ideal notes/s | steady notes/s | steady share of ideal "
        "| whole run notes/s | client CPU ms/note | peak client RSS (MB) | fleet CPU ms/note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for endpoints in args.fleets:
            fleet = Fleet(endpoints, args.ttft, args.tokens_per_s, folder)
            try:
                ideal = endpoints * args.per_endpoint / seconds
                n = int(args.rounds * endpoints * args.per_endpoint)
                for clients in args.clients:
                    out = folder / f"out-{endpoints}-{clients}"
                    result = run_clients(fleet, clients, args.per_endpoint, n, args.tokens, out)
                    result["per_endpoint"] = args.per_endpoint
                    steady = steady_rate(out, seconds)
                    rows.append(throughput_row(endpoints, clients, result, ideal, steady))
                    print(rows[-1], flush=True)
            finally:
                fleet.close()
        if args.fleets:
            section = "## The client alone (`benchmarks/fleet_clients.py`)\n\n" + "\n".join(rows)
            print(f"wrote {write_section('fleet_clients', section)}")
        if not args.memory_n:
            return
        mem_seconds = args.ttft + args.tokens / args.memory_tokens_per_s
        rows = [
            f"One client, {args.memory_fleet} endpoints × {args.per_endpoint}, requests of {mem_seconds:g} s on "
            "average, growing `--n`. Generation: the peak RSS by the end of generation (the job's own `peak_rss_mb`: "
            "the graph, the sampled tasks, the requests). Whole run: the peak over the run, the dataset files "
            "included (written a batch at a time, the card counted row by row).\n",
            "| --n | notes/s | client CPU ms/note | peak RSS, generation (MB) | peak RSS, whole run (MB) | wall (s) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        fleet = Fleet(args.memory_fleet, args.ttft, args.memory_tokens_per_s, folder)
        try:
            for n in args.memory_n:
                result = run_clients(fleet, 1, args.per_endpoint, n, args.tokens, folder / f"mem-{n}")
                (s,) = result["summaries"]
                rows.append(
                    f"| {n:,} | {s['notes_per_s']:,.0f} | {1000 * s['cpu_s'] / s['generated_now']:.2f} | "
                    f"{s['peak_rss_mb']:,.0f} | {result['peaks'][0]:,.0f} | {result['wall']:,.0f} |"
                )
                print(rows[-1], flush=True)
        finally:
            fleet.close()
    section = "## The client's memory as --n grows (`benchmarks/fleet_clients.py`)\n\n" + "\n".join(rows)
    print(f"wrote {write_section('fleet_memory', section)}")


if __name__ == "__main__":
    main()
