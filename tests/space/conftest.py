"""Space fixtures: a Demo on the tiny model, a notes folder written by `medsyn generate`, launched apps on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


@pytest.fixture(scope="session")
def note_filter(real_notes):
    from medsyn.filters.note import NoteFilter

    return NoteFilter.from_real([n["text"] for n in real_notes])


@pytest.fixture(scope="session")
def notes_folder(tmp_path_factory, kg_path, tiny_model_dir) -> Path:
    """A dataset folder as `medsyn generate` writes it (tiny model), with kept and rejected notes."""
    from medsyn.backends import GenerationParams
    from medsyn.job import read_shards
    from medsyn.pipeline import run_generation
    from medsyn.writer import ShardWriter
    from tests.conftest import job_config

    root = tmp_path_factory.mktemp("notes")
    config = job_config(root / "generated", kg_path, tiny_model_dir, n=6, seed=1, batch_size=8, codes=["M54", "J06"])
    run_generation(config, GenerationParams(max_new_tokens=12))
    # The filter would turn every note of a random model down; mark half of them so both configs have rows.
    # Half of them, taking the codes in turn, so that both codes have rejected notes whatever the write order.
    records = read_shards(Path(config.out) / "shards")
    by_code: dict[str, list[dict]] = {}
    for record in sorted(records, key=lambda r: r["id"]):
        by_code.setdefault(record["category"], []).append(record)
    turns = [queue[k] for k in range(len(records)) for queue in by_code.values() if k < len(queue)]
    for record in turns[: len(records) // 2]:
        record.update(kept=False, filter_reasons=["symptom_coverage 0.00 < 0.50"])
    folder = root / "ru-notes"
    with ShardWriter(folder) as writer:
        writer.write(records)
    writer.finalize([r["id"] for r in records])
    return folder


@pytest.fixture(scope="session")
def space_demo(kg, kg_path, tiny_model_dir, note_filter, notes_folder):
    from medsyn.space.core import Demo, SpaceConfig

    config = SpaceConfig(
        model=str(tiny_model_dir),
        adapter="none",
        dtype="float32",
        device="cpu",
        graph=str(kg_path),
        dataset=str(notes_folder),
        max_new_tokens=24,
    )
    return Demo(config, kg=kg, note_filter=note_filter).load()


def _launch(demo):
    from medsyn.space.ui import launch

    port = free_port()
    app = launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return app, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="session")
def space_url(space_demo):
    """The Space on the tiny model, launched once on a loopback port."""
    app, url = _launch(space_demo)
    yield url
    app.close()


@pytest.fixture(scope="session")
def sim_url():
    """A simulated OpenAI-compatible engine (streams words such as «боль», «слабость», «кашель»)."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "medsyn.serving.sim", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def endpoint_space_url(kg, kg_path, note_filter, notes_folder, sim_url):
    """The Space on an endpoint (MEDSYN_ENDPOINT's path), so that a browser sees symptoms found and highlighted."""
    from medsyn.space.core import Demo, SpaceConfig

    config = SpaceConfig.from_env({"MEDSYN_ENDPOINT": sim_url, "MEDSYN_SPACE_DATASET": str(notes_folder)})
    config.graph = str(kg_path)
    demo = Demo(config, kg=kg, note_filter=note_filter).load()
    app, url = _launch(demo)
    yield url
    app.close()
