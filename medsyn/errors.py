"""Errors that medsyn raises for users.

Every user-facing error is a ``ValueError`` subclass whose message says what was received, what was expected
and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "MedsynError",
    "UnknownCodeError",
    "GraphFormatError",
    "ConfigError",
    "BackendError",
    "GenerationAborted",
    "RequestFailed",
    "EndpointsUnavailableError",
    "ReleaseError",
    "FolderBusyError",
    "DiskError",
    "GenerationStopped",
    "Interrupted",
    "MissingExtraError",
    "require",
]


class MedsynError(ValueError):
    """Base class of the errors medsyn raises for bad input."""


class UnknownCodeError(MedsynError, KeyError):
    """An ICD-10 code that is not in the reference directory or the graph."""

    def __init__(self, code: str, closest: list[str], where: str = "the ICD-10 directory") -> None:
        self.code = code
        self.closest = closest
        hint = f"; closest: {', '.join(closest)}" if closest else ""
        super().__init__(f"unknown ICD-10 code {code!r} in {where}{hint}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class GraphFormatError(MedsynError):
    """A knowledge-graph file that is malformed or written by an incompatible version."""


class ConfigError(MedsynError):
    """A config field or recipe with a bad value."""


class BackendError(MedsynError):
    """A generation backend that failed to load or answered with something unusable."""


class GenerationAborted(BackendError):
    """The run stopped early (nearly every first task failed, or every endpoint kept failing); nothing is lost."""


class RequestFailed(BackendError):
    """One request that failed for good, from any backend: a 4xx answer, retries exhausted, a local model's error.

    ``kind`` names the fault (``http_400``, ``timeout``, ``connection``, or the local error's type); ``endpoint``
    is the URL that answered last, ``None`` for an in-process model. The generator turns it into a ``failed`` row.
    """

    def __init__(self, message: str, kind: str, endpoint: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        self.endpoint = endpoint
        self.attempts = attempts


class EndpointsUnavailableError(BackendError):
    """Every endpoint stayed out of rotation for longer than the router waits, or kept giving the same error."""


class FolderBusyError(MedsynError):
    """Another process is writing the output folder (it holds the folder's lock)."""


class DiskError(MedsynError):
    """The disk refused a write (full, read-only, gone); what was written before is safe."""


class GenerationStopped(MedsynError):
    """A run stopped by Ctrl-C or SIGTERM after saving its work; ``exit_code`` is 130 or 143."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``kill``) raised as an interrupt, so that it stops as Ctrl-C does."""

    exit_code = 143


class ReleaseError(MedsynError):
    """A release that cannot be built or does not validate; the message says what to fix."""


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the pip extra that installs it."""


def require(module: str, extra: str, purpose: str) -> object:
    """Import an optional dependency or raise an error naming the extra to install.

    Args:
        module: the module to import, e.g. ``"peft"``.
        extra: the medsyn extra that provides it, e.g. ``"train"``.
        purpose: what it is needed for, used in the message.

    Returns:
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{purpose} needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'medsyn[{extra}]'"
        ) from err
