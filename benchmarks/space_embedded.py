"""The Space with the embedded model: start-up, time to first page, time to first token and notes/s.

    python benchmarks/space_embedded.py [--notes 4 --screenshot spaces/medsyn-demo/screenshot.png]

Loads the Space as ``app.py`` does (graph, quality filter, Gemma 3 270M with its packaged adapter), launches it on a
loopback port and measures, on the machine it runs on:

- start-up: loading the graph, the filter's copy index and the model (the model converted already, as after a
  first run);
- time to first page: the first HTTP answer of ``/``, and, with Debian's chromium, a browser's wait until the
  neighbourhood plot has rendered;
- time to first token and notes/s: ``/generate`` through ``gradio_client`` (the queue, streaming), one visitor at a
  time, on tasks drawn for a few codes.

It saves a screenshot of the page after a generation, and writes the table to benchmarks/RESULTS.md (section
``space_embedded``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from benchmarks.results import write_section  # noqa: E402

CODES = ["M54", "J06", "N92", "K29", "I11", "H10"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser(url: str, screenshot: Path | None, seconds: dict[str, float]) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("no chromium on PATH (apt-get install -y chromium): no browser timings and no screenshot")
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1360, "height": 1180}, locale="ru-RU")
        started = time.perf_counter()
        page.goto(url)
        page.locator("#medsyn-graph .js-plotly-plot").wait_for(timeout=120_000)
        seconds["browser_plot_s"] = time.perf_counter() - started
        page.locator("#medsyn-task-symptoms .token").first.wait_for(timeout=120_000)
        seconds["browser_task_s"] = time.perf_counter() - started
        if screenshot is not None:
            page.click("#medsyn-generate")
            page.locator("#medsyn-verdict", has_text="quality filter").wait_for(timeout=300_000)
            page.evaluate("window.scrollTo(0, 0)")
            tmp = screenshot.with_suffix(".full.png")
            page.screenshot(path=str(tmp), full_page=True)
            _shrink(tmp, screenshot)
        browser.close()


def _shrink(source: Path, target: Path, width: int = 1000) -> None:
    """A smaller, palette PNG for the README (about a tenth of the raw screenshot)."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    source.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=4, help="notes to generate, one visitor at a time")
    parser.add_argument("--max_new_tokens", type=int, default=160)
    parser.add_argument("--screenshot", default="spaces/medsyn-demo/screenshot.png", help="'' for none")
    parser.add_argument("--no_write", action="store_true", help="print the table but leave RESULTS.md alone")
    args = parser.parse_args()

    import httpx
    from gradio_client import Client

    from medsyn.space.core import Demo, SpaceConfig
    from medsyn.space.ui import launch

    seconds: dict[str, float] = {}
    demo = Demo(SpaceConfig(max_new_tokens=args.max_new_tokens)).load()
    port = _port()
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    app = launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    seconds["launch_s"] = time.perf_counter() - started
    started = time.perf_counter()
    page = httpx.get(url, timeout=60)
    seconds["first_page_s"] = time.perf_counter() - started
    assert page.status_code == 200, page.status_code

    client = Client(url, verbose=False)
    ttft, totals, pieces = [], [], []
    for i in range(args.notes + 1):  # the first note warms the model up and is not counted
        code = CODES[i % len(CODES)]
        symptoms, sex, age, _ = client.predict(code, i, api_name="/sample")
        started = time.perf_counter()
        first = None
        job = client.submit(code, symptoms, sex, age, i, "instruction", 0.7, args.max_new_tokens, api_name="/generate")
        for note, *_ in job:
            if first is None and note and any(piece["token"].strip() for piece in note):
                first = time.perf_counter() - started
        total = time.perf_counter() - started
        verdict = job.outputs()[-1][1]
        count = int(verdict.split("(")[-1].split(" pieces")[0]) if "pieces streamed" in verdict else 0
        print(f"note {i} ({code}): first token {first:.2f} s, {total:.2f} s, {count} pieces")
        if i:
            ttft.append(first or total)
            totals.append(total)
            pieces.append(count)

    shot = Path(args.screenshot) if args.screenshot else None
    _browser(url, shot, seconds)
    app.close()

    t = demo.timings
    rows = [
        ("start-up: graph + filter index + model load", f"{t['load_s']:.1f} s "
         f"({t['graph_s']:.1f} + {t['filter_s']:.1f} + {t['engine_s']:.1f})"),
        ("launch (Blocks built, server up)", f"{seconds['launch_s']:.1f} s"),
        ("first page: HTTP answer of /", f"{seconds['first_page_s'] * 1000:.0f} ms"),
    ]  # fmt: skip
    if "browser_plot_s" in seconds:
        rows.append(("first page in chromium: plot rendered", f"{seconds['browser_plot_s']:.1f} s"))
        rows.append(("first page in chromium: first task drawn", f"{seconds['browser_task_s']:.1f} s"))
    rows += [
        ("time to first token (median of the notes)", f"{statistics.median(ttft):.2f} s"),
        ("seconds per note (median)", f"{statistics.median(totals):.1f} s"),
        ("notes/s, one visitor at a time", f"{len(totals) / sum(totals):.3f}"),
        ("streamed pieces/s", f"{sum(pieces) / sum(totals):.1f}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    load = os.getloadavg()[0]
    markdown = (
        "## The Space with the embedded model (`benchmarks/space_embedded.py`)\n\n"
        f"Gemma 3 270M + packaged LoRA adapter, in-process; {args.notes} notes of up to {args.max_new_tokens} new "
        "tokens through `/generate` (Gradio queue, streaming), one visitor at a time, after one warm-up note. "
        f"Load average at the end: {load:.1f}.\n\n| what | time |\n| --- | --- |\n{table}\n"
    )
    print(markdown)
    if not args.no_write:
        write_section("space_embedded", markdown)


if __name__ == "__main__":
    main()
