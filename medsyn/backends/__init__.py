"""Generation backends: one contract, one module per backend.

A backend has a ``name``, a ``load()`` that creates its model or client (never at import), and
``generate(prompts, params)`` that turns a batch of prompts into :class:`~medsyn.backends.base.Generation`s.
:func:`get_backend` builds one by name; new backends are a new module plus an entry in ``BACKENDS``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from medsyn.backends.base import Backend, Generation, GenerationParams
from medsyn.errors import ConfigError

__all__ = ["Backend", "Generation", "GenerationParams", "BACKENDS", "get_backend"]

# name -> "module:Class", imported on demand so that optional dependencies stay optional.
BACKENDS: dict[str, str] = {
    "transformers": "medsyn.backends.transformers:TransformersBackend",
    "endpoint": "medsyn.backends.endpoint:EndpointBackend",
}


def get_backend(name: str, **kwargs: Any) -> Backend:
    """Instantiate the backend called ``name`` (not yet loaded) with its keyword options."""
    try:
        module, cls = BACKENDS[name].split(":")
    except KeyError as err:
        raise ConfigError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}") from err
    return getattr(import_module(module), cls)(**kwargs)
