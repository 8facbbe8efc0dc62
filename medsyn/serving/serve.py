"""``medsyn serve``: the embedded model with its packaged adapter behind a real OpenAI-compatible engine.

    medsyn serve [--port 8000] [--host 127.0.0.1]

The adapter is merged into the base model once (``merge_and_unload``) and saved under ``$MEDSYN_HOME/models``,
with the recipe's sampling settings in its ``generation_config.json``: under continuous batching,
``transformers serve`` samples every request with the settings of its first one, so the model's own defaults are
what count. The engine is ``transformers serve --continuous-batching`` (``pip install 'medsyn[serve]'``). Once it
answers, the command prints the ``medsyn generate`` line that uses it, and runs until stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsyn.errors import BackendError, ConfigError, require
from medsyn.models import DEFAULT_MODEL, resolve_model
from medsyn.paths import models_dir

__all__ = ["ServeConfig", "merged_model", "serve_command", "serve", "wait_ready"]

logger = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    """What to serve and where."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=8000, metadata={"help": "port to listen on"})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "model id or path; the embedded default if unset"})
    adapter: str = field(
        default="auto", metadata={"help": "LoRA adapter to merge; 'auto': the packaged one for the default model"}
    )
    dtype: str = field(default="bfloat16", metadata={"help": "weights dtype of the merged model"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, auto"})
    continuous_batching: bool = field(default=True, metadata={"help": "serve with continuous batching"})
    # Left to itself, continuous batching sizes its KV cache from the machine's memory: 14 GB here for a 270M model.
    # 128 blocks of 256 tokens hold 64 notes of 500 tokens; the server then peaks at 3 GB with the same throughput.
    cb_num_blocks: int | None = field(
        default=128, metadata={"help": "KV cache blocks of 256 tokens (0: let the engine size it from memory)"}
    )
    cb_max_batch_tokens: int | None = field(
        default=1024, metadata={"help": "most tokens per continuous batch (0: let the engine choose)"}
    )
    # Sampling defaults written into the merged model's generation_config.json
    temperature: float = field(default=0.7, metadata={"help": "default sampling temperature"})
    top_p: float = field(default=0.95, metadata={"help": "default nucleus mass"})
    top_k: int = field(default=50, metadata={"help": "default top-k"})
    repetition_penalty: float = field(default=1.15, metadata={"help": "default repetition penalty"})
    ready_timeout: float = field(default=600.0, metadata={"help": "seconds to wait for the engine to answer"})

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")


def merged_model(config: ServeConfig) -> Path:
    """The folder to serve: the base model with the adapter merged in, saved once; the base model with no adapter."""
    from medsyn.generator import adapter_hash, resolve_adapter

    adapter = resolve_adapter(config.model, config.adapter)
    base = resolve_model(config.model)
    name = Path(base).name if Path(base).exists() else base.replace("/", "--")
    tag = f"{name}-medsyn-{Path(adapter).name if adapter else 'base'}-{(adapter_hash(adapter) or 'none')[:8]}"
    target = models_dir() / "served" / tag
    if (target / "config.json").exists():
        _write_sampling_defaults(target, config)
        return target
    torch = require("torch", "torch", "medsyn serve")
    from medsyn.models import load_model_and_tokenizer

    logger.info("merging %s into %s once, saving to %s", adapter or "no adapter", base, target)
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(config.dtype)
    if dtype is None:
        raise ConfigError(f"dtype must be bfloat16, float16 or float32, got {config.dtype!r}")
    model, tokenizer = load_model_and_tokenizer(base, adapter, dtype=config.dtype, device="cpu")
    staging = target.with_name(target.name + ".tmp")
    model.to(dtype).save_pretrained(staging)
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(staging)
    _write_sampling_defaults(staging, config)
    staging.replace(target)  # complete folders only
    return target


def _write_sampling_defaults(folder: Path, config: ServeConfig) -> None:
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(folder)
    except OSError:
        gen = GenerationConfig()
    gen.do_sample = config.temperature > 0
    gen.temperature, gen.top_p, gen.top_k = config.temperature, config.top_p, config.top_k
    gen.repetition_penalty = config.repetition_penalty
    gen.save_pretrained(folder)


def serve_command(config: ServeConfig, model_path: Path) -> list[str]:
    """The ``transformers serve`` command line for ``model_path``."""
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_path)]
    cmd += ["--host", config.host, "--port", str(config.port), "--device", config.device, "--dtype", config.dtype]
    if config.continuous_batching:
        cmd.append("--continuous-batching")
    if config.cb_num_blocks:
        cmd += ["--cb-num-blocks", str(config.cb_num_blocks)]
    if config.cb_max_batch_tokens:
        cmd += ["--cb-max-batch-tokens", str(config.cb_max_batch_tokens)]
    return cmd


def wait_ready(url: str, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url/health`` answers 200; raise if the process dies or the time runs out."""
    from medsyn.backends.endpoint import http_client_module

    httpx = http_client_module()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BackendError(f"the engine exited with code {proc.returncode} before answering; see its log above")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise BackendError(f"the engine did not answer at {url}/health within {timeout:.0f} s")


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as err:
            raise ConfigError(f"cannot listen on {host}:{port} ({err.strerror}); pass another --port") from err


def serve(config: ServeConfig) -> int:
    """Prepare the model, start the engine, print how to use it, and wait until it stops."""
    for module in ("fastapi", "uvicorn", "openai"):
        require(module, "serve", "medsyn serve (transformers serve)")
    _check_port_free(config.host, config.port)  # before the merge, and so /health can't be another server's
    model_path = merged_model(config)
    url = f"http://{config.host}:{config.port}"
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen(serve_command(config, model_path), env=env)

    def stop(signum: int, _frame: Any) -> None:
        proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        wait_ready(url, config.ready_timeout, proc)
        template = "instruction" if "medsyn-base" not in model_path.name else "auto"
        logger.info("serving %s at %s", model_path.name, url)
        print(f"medsyn serve: ready at {url} (model {model_path})", flush=True)
        print(
            f"  medsyn generate --endpoint {url} --template {template} --n 100 --out outputs/ru-notes-served",
            flush=True,
        )
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
