import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from medsyn.backends import GenerationParams, get_backend
from medsyn.backends.endpoint import read_endpoints
from medsyn.errors import BackendError, ConfigError, GenerationAborted
from medsyn.job import read_shards
from medsyn.pipeline import GenerateConfig, run_generation
from medsyn.serving.sim import FaultProxy, SimulatedEngine
from tests.conftest import free_port, job_config, kill_9_once_written, sim_process

PARAMS = GenerationParams(max_new_tokens=8, temperature=0.7, stop=["###"])


def test_endpoints_from_flags_and_files(tmp_path):
    f = tmp_path / "fleet.txt"
    f.write_text("# the cluster\nhttp://10.0.0.1:8000\nhttp://10.0.0.2:8000/v1  # second\n\n")
    assert read_endpoints([str(f), "http://127.0.0.1:9/"]) == [
        "http://10.0.0.1:8000",
        "http://10.0.0.2:8000",
        "http://127.0.0.1:9",
    ]
    with pytest.raises(ConfigError, match="not an http"):
        read_endpoints(["localhost:8000"])
    with pytest.raises(ConfigError, match="needs --endpoint"):
        GenerateConfig(backend="endpoint")


def test_fleet_files_give_each_endpoint_its_own_limit(tmp_path):
    from medsyn.backends.endpoint import read_fleet

    f = tmp_path / "fleet.txt"
    f.write_text("http://10.0.0.1:8000 32   # an H100\nhttp://10.0.0.2:8000\n")
    assert read_fleet([str(f)]) == {"http://10.0.0.1:8000": 32, "http://10.0.0.2:8000": None}
    backend = get_backend("endpoint", endpoints=[str(f)], max_concurrency=4)
    assert backend.max_in_flight == 36
    f.write_text("http://10.0.0.1:8000 many\n")
    with pytest.raises(ConfigError, match=r"fleet.txt:1 is 'http://10.0.0.1:8000 many'; a fleet line is URL"):
        read_fleet([str(f)])
    f.write_text("http://10.0.0.1:8000\nhttp://10.0.0.1:8000/v1\n")
    with pytest.raises(ConfigError, match=r"listed twice \(.*fleet.txt:2\)"):
        read_fleet([str(f)])


def test_a_fleet_file_is_read_again_when_it_changes(tmp_path, caplog):
    f = tmp_path / "fleet.txt"
    f.write_text("http://10.0.0.1:8000\n")
    backend = get_backend("endpoint", endpoints=[str(f)], max_concurrency=4)
    backend.engines, backend.served = {"http://10.0.0.1:8000": "vllm"}, {"http://10.0.0.1:8000": "m"}
    assert backend.refresh() is False  # unchanged
    f.write_text("http://10.0.0.1:8000 2\nhttp://10.0.0.3:8000 16\n")
    caplog.set_level("INFO", logger="medsyn")
    assert backend.refresh() is True
    assert backend.max_in_flight == 18 and backend.urls == ["http://10.0.0.1:8000", "http://10.0.0.3:8000"]
    assert backend.engines["http://10.0.0.3:8000"] == "vllm" and backend.served["http://10.0.0.3:8000"] == "m"
    assert (
        "fleet: 1 joined (http://10.0.0.3:8000), 0 leaving; 2 endpoints, 18 requests in flight at most" in caplog.text
    )
    f.write_text("http://10.0.0.3:8000 16\nnot a url\n")
    assert backend.refresh() is False and backend.max_in_flight == 18  # a broken file changes nothing
    assert "the fleet was not changed" in caplog.text
    assert backend.refresh(force=True) is False  # SIGHUP re-reads even an unchanged file


def test_both_routes_on_a_real_server_offline(served_url):
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # huggingface_hub's offline switch must not block a local server
    for fmt, prompt in (("text", "Жалобы на боль"), ("chat", [{"role": "user", "content": "Жалобы"}])):
        backend = get_backend("endpoint", endpoints=[served_url], prompt_format=fmt)
        backend.load()
        assert backend.engines[served_url] == "transformers"
        (gen,) = backend.generate([prompt], PARAMS, seeds=[7])
        assert gen.completion_tokens > 0 and gen.meta["endpoint"] == served_url
        assert gen.meta["request_params"]["seed"] == 7 and gen.meta["served_model"]


def test_a_wrong_model_name_fails_at_load(served_url):
    backend = get_backend("endpoint", endpoints=[served_url], model="no-such-model")
    with pytest.raises(BackendError, match="not 'no-such-model'"):
        backend.load()


def _served_config(tmp_path, kg_path, urls, **kw) -> GenerateConfig:
    return job_config(tmp_path / "out", kg_path, endpoint=urls, **({"n": 12, "seed": 2} | kw))


class _Loop:
    """An event loop on a thread, for loopback servers that a blocking run_generation talks to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def test_faults_are_survived_and_nothing_is_lost(tmp_path, kg_path, served_url):
    from datasets import load_dataset

    faults = {0: "429", 1: "503", 2: "stall", 3: "malformed", 4: "drop", 5: "400", 7: "503", 9: "malformed"}
    loop = _Loop()
    try:
        proxy = loop.run(FaultProxy(served_url, lambda i: faults.get(i), stall_s=3.0).start())
        config = _served_config(tmp_path, kg_path, [proxy.url])
        summary = run_generation(config, PARAMS)
        # the 400 fails its task for good; every other fault is retried until the note comes back
        assert summary["kept"] + summary["rejected"] == 11 and summary["failed"] == 1
        assert {"429", "503", "stall", "malformed", "drop", "400"} <= set(proxy.log)
        failed = load_dataset(config.out, "failed", split="train")
        assert failed["error_type"] == ["http_400"] and "prompt too long" in failed["error"][0]
        rows = load_dataset(config.out, split="train")
        assert set(rows["endpoint"]) == {proxy.url} and all(s > 0 for s in rows["request_seed"])
        # the failed task is never counted as done: the same command retries it, and nothing is duplicated
        faults.clear()
        again = run_generation(config, PARAMS)
        assert again["generated_now"] == 1 and again["failed"] == 0 and again["kept"] + again["rejected"] == 12
        ids = [r["id"] for r in read_shards(tmp_path / "out" / "shards")]
        assert len(ids) == len(set(ids)) == 12
        loop.run(proxy.stop())
    finally:
        loop.close()


def test_a_wrong_url_stops_the_run_early_with_one_line(tmp_path, kg_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(GenerationAborted, match=f"{url}: connection"):
        run_generation(_served_config(tmp_path, kg_path, [url], n=40), PARAMS)
    assert time.monotonic() - started < 30


def test_two_endpoints_one_killed_mid_run(tmp_path, kg_path):
    ports = [free_port(), free_port()]
    procs = [sim_process(p, tokens_per_s=40.0) for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    out = tmp_path / "out"
    try:

        def kill_first_when_started():
            deadline = time.time() + 30
            while time.time() < deadline:
                if (out / "shards").exists() and len(read_shards(out / "shards")) >= 6:
                    procs[0].kill()
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_first_when_started)
        killer.start()
        summary = run_generation(_served_config(tmp_path, kg_path, urls, n=40, max_retries=5), PARAMS)
        killer.join()
        assert procs[0].poll() is not None  # it was killed mid-run
        assert summary["kept"] == 40 and summary["failed"] == 0
        by_url = {e["url"]: e for e in summary["endpoints"]}
        assert by_url[urls[1]]["ok"] > by_url[urls[0]]["ok"] > 0
    finally:
        for p in procs:
            p.kill()


def test_kill_9_of_a_served_run_then_resume_matches_an_unbroken_run(tmp_path, kg_path):
    port = free_port()
    proc = sim_process(port, tokens_per_s=30.0)
    url = f"http://127.0.0.1:{port}"
    try:
        unbroken = _served_config(tmp_path / "a", kg_path, [url], n=24)
        run_generation(unbroken, PARAMS)
        expected = {r["id"]: r["note"] for r in read_shards(tmp_path / "a" / "out" / "shards")}

        out = tmp_path / "b" / "out"
        cmd = [sys.executable, "-m", "medsyn.cli", "generate", "--n", "24", "--out", str(out), "--seed", "2"]
        cmd += ["--graph", str(kg_path), "--endpoint", url, "--template", "instruction", "--filter", "false"]
        cmd += ["--max_concurrency", "2", "--max_new_tokens", "8", "--temperature", "0.7", "--stop", "###"]
        cmd += ["--timeout", "2.0", "--max_retries", "3"]
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        assert 0 < kill_9_once_written(cmd, out / "shards", at_least=5) < 24
        assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
        got = {r["id"]: r["note"] for r in read_shards(out / "shards")}
        # same ids, and (the simulated engine honours seeds) the same notes, whatever the resume point
        assert got == expected
    finally:
        proc.kill()


def test_the_api_key_is_sent_and_never_written_or_logged(tmp_path, kg_path, monkeypatch, caplog):
    import logging

    secret = "hf_medsynTestSecret0123456789"
    monkeypatch.setenv("MEDSYN_API_KEY", secret)
    loop = _Loop()
    try:
        engine = loop.run(SimulatedEngine(ttft=0.0, tokens_per_s=1000.0).start())
        with caplog.at_level(logging.DEBUG):
            run_generation(_served_config(tmp_path, kg_path, [engine.url], n=6, template="example_guided"), PARAMS)
        assert engine.authorizations == {f"Bearer {secret}"}  # both routes' client sent it
        assert secret not in caplog.text
        for path in (tmp_path / "out").rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        loop.run(engine.stop())
    finally:
        loop.close()


def test_stream_reads_server_sent_events_from_both_routes():
    loop = _Loop()
    try:
        engine = loop.run(SimulatedEngine(ttft=0.0, tokens_per_s=1000.0).start())
        for fmt, prompt in (("text", "Жалобы"), ("chat", [{"role": "user", "content": "Жалобы"}])):
            backend = get_backend("endpoint", endpoints=[engine.url], prompt_format=fmt)
            backend.load()
            pieces = list(backend.stream(prompt, PARAMS, seed=3))
            assert len(pieces) == 8  # one event per word, max_tokens words
            (whole,) = backend.generate([prompt], PARAMS, seeds=[3])
            assert "".join(pieces) == whole.text
        loop.run(engine.stop())
    finally:
        loop.close()


def test_stream_from_a_dead_endpoint_fails_with_one_line():
    from medsyn.errors import RequestFailed

    backend = get_backend("endpoint", endpoints=[f"http://127.0.0.1:{free_port()}"], timeout=5)
    backend.load()
    with pytest.raises(RequestFailed, match="ConnectError|connection|refused") as err:
        list(backend.stream("Жалобы", PARAMS, seed=1))
    assert err.value.kind == "connection"


def test_stream_from_a_real_server(served_url):
    backend = get_backend("endpoint", endpoints=[served_url], prompt_format="chat")
    backend.load()
    pieces = list(backend.stream([{"role": "user", "content": "Жалобы"}], PARAMS, seed=5))
    assert pieces and all(isinstance(p, str) for p in pieces)


def test_a_served_model_without_a_chat_template_gets_text_prompts(tmp_path, kg_path, caplog):
    loop = _Loop()
    try:
        engine = loop.run(SimulatedEngine(ttft=0.0, tokens_per_s=2000.0, chat_template=False).start())
        config = _served_config(tmp_path, kg_path, [engine.url], template="auto", n=4)
        with caplog.at_level("WARNING", logger="medsyn.backends.endpoint"):
            summary = run_generation(config, PARAMS)
        assert summary["failed"] == 0 and summary["kept"] + summary["rejected"] == 4
        (line,) = [r.getMessage() for r in caplog.records if "takes no chat requests" in r.getMessage()]
        assert "tokenizer.chat_template is not set" in line and "sending text prompts" in line
        rows = read_shards(tmp_path / "out" / "shards")
        assert {r["template"] for r in rows} == {"instruction"} and not rows[0]["prompt"].startswith("[")
        # chat asked for by name is refused at load, with the flag that works
        backend = get_backend("endpoint", endpoints=[engine.url], prompt_format="chat")
        with pytest.raises(BackendError, match="takes no chat requests.*--prompt_format text"):
            backend.load()
        loop.run(engine.stop())
    finally:
        loop.close()


def test_a_server_that_always_answers_the_same_500_stops_the_run_at_once(tmp_path, kg_path):
    loop = _Loop()
    try:
        engine = loop.run(SimulatedEngine(ttft=0.0, tokens_per_s=2000.0).start())
        proxy = loop.run(FaultProxy(engine.url, lambda i: "500").start())
        config = _served_config(tmp_path, kg_path, [proxy.url], n=40, timeout=5.0, max_retries=5)
        started = time.monotonic()
        with pytest.raises(GenerationAborted, match="the same error.*device-side assert.*run the same command"):
            run_generation(config, PARAMS)
        assert time.monotonic() - started < 60
        assert proxy.posts < 40  # far fewer requests than tasks: it stopped instead of spinning
        loop.run(proxy.stop())
        loop.run(engine.stop())
    finally:
        loop.close()
