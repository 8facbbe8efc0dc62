"""Generation backends: one contract, one module per backend.

A backend has a ``name``, a ``load()`` that creates its model or client (never at import), and
``generate(prompts, params)`` that turns a batch of prompts into :class:`~medsyn.backends.base.Generation`s.
:func:`get_backend` builds one by name and options, :func:`backend_from_config` from a generator config; a new
backend is a new module with a ``from_config`` plus an entry in ``BACKENDS``. Any backend's request that fails for
good raises :class:`~medsyn.errors.RequestFailed`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from medsyn.backends.base import Backend, Generation, GenerationParams
from medsyn.errors import ConfigError

__all__ = [
    "Backend",
    "Generation",
    "GenerationParams",
    "BACKENDS",
    "backend_class",
    "backend_from_config",
    "get_backend",
]

# name -> "module:Class", imported on demand so that optional dependencies stay optional.
BACKENDS: dict[str, str] = {
    "transformers": "medsyn.backends.transformers:TransformersBackend",
    "endpoint": "medsyn.backends.endpoint:EndpointBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class of the backend called ``name``, imported on demand."""
    try:
        module, cls = BACKENDS[name].split(":")
    except KeyError as err:
        raise ConfigError(f"unknown backend {name!r}; available: {sorted(BACKENDS)}") from err
    return getattr(import_module(module), cls)


def get_backend(name: str, **kwargs: Any) -> Backend:
    """Instantiate the backend called ``name`` (not yet loaded) with its keyword options."""
    return backend_class(name)(**kwargs)


def backend_from_config(config: Any, adapter: str | None = None, template: str = "auto") -> Backend:
    """The backend that ``config.backend`` names, built by its own ``from_config`` (not yet loaded)."""
    return backend_class(config.backend).from_config(config, adapter=adapter, template=template)
