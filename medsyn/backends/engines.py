"""What a served engine is and what it takes: detection from its model list, per-engine fields, the chat probe.

Engines differ in the fields they take beyond the OpenAI ones; :data:`ENGINES` says what each is sent, and every
note records the parameters that were actually sent. :func:`detect_engine` names the engine from ``/v1/models``
(and TGI's ``/info``); :func:`probe_chat` asks whether the served model takes chat requests at all (a base model
served without a chat template answers them with an error).

The functions here take an open synchronous HTTP client, so they run once per endpoint at load, before any task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medsyn.backends.base import GenerationParams

__all__ = ["ENGINES", "ChatProbe", "detect_engine", "engine_fields", "list_models", "probe_chat"]

# What each engine is sent beyond the OpenAI fields (max_tokens, temperature, top_p, seed, stop):
#   extra: how top_k / repetition_penalty travel; max_stop: how many stop strings it takes.
ENGINES: dict[str, dict[str, Any]] = {
    "vllm": {"extra": {"top_k": "top_k", "repetition_penalty": "repetition_penalty"}, "max_stop": None},
    "sglang": {"extra": {"top_k": "top_k", "repetition_penalty": "repetition_penalty"}, "max_stop": None},
    "llama.cpp": {"extra": {"top_k": "top_k", "repetition_penalty": "repeat_penalty"}, "max_stop": None},
    # TGI's OpenAI routes take no top_k; its completions route takes repetition_penalty, and at most 4 stops.
    "tgi": {"extra": {"repetition_penalty": "repetition_penalty"}, "max_stop": 4, "chat_extra": {}},
    # transformers serve refuses unknown fields (422); it maps frequency_penalty to repetition_penalty = 1 + fp.
    "transformers": {"extra": {"repetition_penalty": "frequency_penalty"}, "max_stop": None},
    "openai": {"extra": {}, "max_stop": 4},
}


def engine_fields(engine: str, params: GenerationParams, chat: bool) -> dict[str, Any]:
    """The sampling fields to send to ``engine``, as the engine names them.

    Example:
        >>> engine_fields("tgi", GenerationParams(stop=["a", "b", "c", "d", "e"]), chat=False)["stop"]
        ['a', 'b', 'c', 'd']
    """
    spec = ENGINES[engine]
    body: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature}
    if params.temperature > 0:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop"] = list(params.stop[: spec["max_stop"]] if spec["max_stop"] else params.stop)
    extra = spec.get("chat_extra", spec["extra"]) if chat else spec["extra"]
    if "top_k" in extra and params.top_k and params.temperature > 0:
        body[extra["top_k"]] = params.top_k
    if "repetition_penalty" in extra and params.repetition_penalty != 1.0:
        name = extra["repetition_penalty"]
        body[name] = (
            round(params.repetition_penalty - 1.0, 6) if name == "frequency_penalty" else params.repetition_penalty
        )
    return body


def list_models(response: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The model ids of a ``/v1/models`` answer and its raw entries; empty when the answer is not a model list."""
    if response.status_code != 200:
        return [], []
    try:
        data = response.json().get("data", [])
        return [m["id"] for m in data], data
    except (ValueError, KeyError, TypeError, AttributeError):
        return [], []


def detect_engine(client: Any, url: str, listed: list[dict[str, Any]]) -> str:
    """The engine behind ``url``, from the owner of its first model or its extra routes; ``openai`` if unknown."""
    owner = str(listed[0].get("owned_by", "")).lower() if listed else ""
    if owner in ("vllm", "sglang"):
        return owner
    if owner in ("llamacpp", "llama.cpp"):
        return "llama.cpp"
    if listed and isinstance(listed[0].get("status"), dict):
        return "transformers"  # transformers serve tells whether each model is loaded
    try:
        info = client.get(f"{url}/info")
        if info.status_code == 200 and "model_id" in info.json():
            return "tgi"
    except Exception:  # noqa: BLE001 - any failure means "not TGI"
        pass
    return "openai"


@dataclass
class ChatProbe:
    """What one tiny chat request found: ``takes_chat`` is ``None`` when the answer says nothing either way."""

    takes_chat: bool | None
    detail: str = ""


def probe_chat(client: Any, url: str, model: str | None) -> ChatProbe:
    """Send one one-token chat request to ``url`` and read whether the served model takes chat prompts.

    A 200 means yes. An error answer that is about the request or the model (4xx other than 408/429, or a 5xx
    other than 503) means no: a base model served without a chat template answers that way. An overloaded or
    unreachable server says nothing, and the probe returns ``None``.
    """
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "Здравствуйте"}], "max_tokens": 1}
    if model:
        body["model"] = model
    try:
        response = client.post(f"{url}/v1/chat/completions", json=body)
    except Exception as err:  # noqa: BLE001 - no answer: the probe cannot tell
        return ChatProbe(None, f"{type(err).__name__}: {err}")
    detail = " ".join(response.text.split())[:200]
    if response.status_code == 200:
        return ChatProbe(True)
    if response.status_code in (408, 429, 503):
        return ChatProbe(None, f"HTTP {response.status_code}: {detail}")
    return ChatProbe(False, f"HTTP {response.status_code}: {detail}")
