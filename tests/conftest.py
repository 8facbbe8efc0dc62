"""Shared fixtures: an isolated cache, the real graph built once, a tiny knowledge graph, a tiny random model."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A private datasets cache: load_dataset() of a test's folder must never see another run's cached copy.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="medsyn-datasets-cache-")


@pytest.fixture(scope="session", autouse=True)
def medsyn_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point the medsyn cache at a temporary folder so tests never touch (or depend on) the user's cache."""
    home = tmp_path_factory.mktemp("medsyn-home")
    old = os.environ.get("MEDSYN_HOME")
    os.environ["MEDSYN_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("MEDSYN_HOME", None)
    else:
        os.environ["MEDSYN_HOME"] = old


@pytest.fixture(scope="session")
def real_notes() -> list[dict[str, str]]:
    from medsyn.data import load_rumedtop3

    return load_rumedtop3("train")


@pytest.fixture(scope="session")
def kg_path(tmp_path_factory: pytest.TempPathFactory):
    """The full graph from the packaged data, built once per test run (about 2 s)."""
    from medsyn.kg import build_graph

    path = tmp_path_factory.mktemp("kg") / "medsyn-kg.json"
    build_graph().save(path)
    return path


@pytest.fixture(scope="session")
def kg(kg_path):
    from medsyn.kg import MedicalKG

    return MedicalKG.load(kg_path)


@pytest.fixture(scope="session")
def tiny_kg(real_notes):
    """A graph built from the notes of three categories only."""
    from medsyn.kg import build_graph

    notes = [n for n in real_notes if n["code"] in ("M54", "J06", "N92")]
    return build_graph(notes=notes)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, real_notes) -> Path:
    """A 2-layer Llama with random weights and a byte-level BPE tokenizer trained on the fly on real notes."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([n["text"] for n in real_notes[:400]], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny model with a chat template, so that a server answers both the text and the chat route."""
    import shutil

    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-chat")
    shutil.copytree(tiny_model_dir, path, dirs_exist_ok=True)
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def served_url(tiny_chat_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """``medsyn serve`` (transformers serve with continuous batching) on the tiny model, on a free loopback port."""
    import subprocess
    import sys

    from medsyn.serving.serve import wait_ready

    port = free_port()
    home = tmp_path_factory.mktemp("serve-home")
    env = dict(os.environ, MEDSYN_HOME=str(home), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "medsyn.cli", "serve", "--model", str(tiny_chat_model_dir), "--adapter", "none"]
    cmd += ["--port", str(port), "--dtype", "float32"]
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, 120, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def kill_9_once_written(cmd: list[str], shard_dir: Path, at_least: int, timeout: float = 120.0) -> int:
    """Start ``cmd``, SIGKILL it once ``shard_dir`` holds ``at_least`` records, and return how many it holds then."""
    import signal
    import subprocess
    import time

    from medsyn.job import read_shards

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if shard_dir.exists() and len(read_shards(shard_dir)) >= at_least:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(read_shards(shard_dir))


def job_config(out: Path, kg_path: Path, model_dir: Path | None = None, **kw):
    """The test job, one factory for every test module: ``n=10``, seed 3, no filter.

    With ``model_dir`` it runs that tiny model in-process (float32 on CPU, batches of 4); with ``endpoint=[...]``
    it is served, on the instruction template with short timeouts and 4 requests in flight.
    """
    from medsyn.pipeline import GenerateConfig

    base: dict = dict(n=10, out=str(out), seed=3, graph=str(kg_path), filter=False)
    if kw.get("endpoint"):
        base |= dict(backend="endpoint", template="instruction", max_concurrency=4, timeout=2.0, max_retries=3)
    else:
        base |= dict(model=str(model_dir), adapter="none", dtype="float32", device="cpu", batch_size=4)
    return GenerateConfig(**(base | kw))


def sim_engine(tokens_per_s: float = 100.0):
    """A context manager: a simulated engine in its own process on a free loopback port, as its URL; killed after."""
    import contextlib

    @contextlib.contextmanager
    def running():
        port = free_port()
        proc = sim_process(port, tokens_per_s)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.kill()
            proc.wait()

    return running()


def sim_process(port: int, tokens_per_s: float = 100.0):
    """A simulated engine in its own process on ``port`` (``python -m medsyn.serving.sim``), once it answers."""
    import subprocess
    import sys
    import time

    from medsyn.backends.endpoint import http_client_module

    cmd = [sys.executable, "-m", "medsyn.serving.sim", "--port", str(port), "--tokens_per_s", str(tokens_per_s)]
    proc = subprocess.Popen(cmd)
    for _ in range(100):
        try:
            http_client_module().get(f"http://127.0.0.1:{port}/v1/models", timeout=1)
            return proc
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("simulated engine did not start")


class FixedScores:
    """A classifier stand-in whose decision scores are given per text (labels J06, M54, N92)."""

    labels_ = ["J06", "M54", "N92"]

    def __init__(self, table):
        self.table = table

    def decision_function(self, texts):
        import numpy as np

        return np.array([self.table[t] for t in texts])


SPLIT_CODES = ("M54", "J06", "N92", "K29", "I10", "L30")


@pytest.fixture(scope="session")
def small_split():
    """(train, dev) of real RuMedTop3 notes: the notes of six frequent codes, at most 40 train and 10 dev notes each."""
    from medsyn.data import load_rumedtop3

    def pick(notes, per_code):
        out, seen = [], {c: 0 for c in SPLIT_CODES}
        for n in notes:
            if n["code"] in seen and seen[n["code"]] < per_code:
                out.append(n)
                seen[n["code"]] += 1
        return out

    return pick(load_rumedtop3("train"), 40), pick(load_rumedtop3("dev"), 10)
