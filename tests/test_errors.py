"""Tests of medsyn.errors: the class hierarchy callers catch on, the messages, and require() for optional extras."""

from __future__ import annotations

import json

import pytest

import medsyn.errors as errors
from medsyn.errors import (
    BackendError,
    ConfigError,
    DiskError,
    EndpointsUnavailableError,
    FolderBusyError,
    GenerationAborted,
    GenerationStopped,
    GraphFormatError,
    Interrupted,
    MedsynError,
    MissingExtraError,
    ReleaseError,
    RequestFailed,
    UnknownCodeError,
    require,
)


def test_require_returns_an_installed_module():
    assert require("json", "core", "Reading JSON") is json


def test_require_names_the_extra_to_install():
    with pytest.raises(MissingExtraError) as err:
        require("medsyn_no_such_module_xyz", "train", "Fine-tuning")
    assert str(err.value) == (
        "Fine-tuning needs the 'medsyn_no_such_module_xyz' package, which is not installed; "
        "install it with: pip install 'medsyn[train]'"
    )
    assert isinstance(err.value, ImportError)
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_require_of_a_missing_submodule_names_the_submodule():
    with pytest.raises(MissingExtraError, match=r"needs the 'json\.no_such_part' package.*medsyn\[serve\]"):
        require("json.no_such_part", "serve", "Serving")


def test_missing_extra_is_an_import_error_not_a_bad_input_error():
    assert issubclass(MissingExtraError, ImportError)
    assert not issubclass(MissingExtraError, MedsynError)


@pytest.mark.parametrize(
    "cls", [GraphFormatError, ConfigError, BackendError, ReleaseError, FolderBusyError, DiskError, GenerationStopped]
)
def test_user_errors_are_medsyn_and_value_errors(cls):
    assert issubclass(cls, MedsynError)
    assert issubclass(cls, ValueError)


@pytest.mark.parametrize("cls", [GenerationAborted, RequestFailed, EndpointsUnavailableError])
def test_backend_failures_are_backend_errors(cls):
    assert issubclass(cls, BackendError)


def test_unknown_code_error_is_both_a_medsyn_and_a_key_error():
    err = UnknownCodeError("X99", ["X98", "X97"])
    assert isinstance(err, MedsynError) and isinstance(err, KeyError) and isinstance(err, ValueError)
    assert err.code == "X99" and err.closest == ["X98", "X97"]
    assert str(err) == "unknown ICD-10 code 'X99' in the ICD-10 directory; closest: X98, X97"  # not quoted
    with pytest.raises(KeyError):
        raise err
    with pytest.raises(MedsynError):
        raise err


def test_unknown_code_error_without_candidates_has_no_hint():
    err = UnknownCodeError("Q", [], where="the graph")
    assert str(err) == "unknown ICD-10 code 'Q' in the graph"


def test_request_failed_carries_its_fault():
    err = RequestFailed("HTTP 400: prompt too long", kind="http_400", endpoint="http://127.0.0.1:9", attempts=3)
    assert str(err) == "HTTP 400: prompt too long"
    assert (err.kind, err.endpoint, err.attempts) == ("http_400", "http://127.0.0.1:9", 3)
    local = RequestFailed("CUDA out of memory", kind="OutOfMemoryError")
    assert (local.endpoint, local.attempts) == (None, 1)


def test_generation_stopped_carries_its_exit_code():
    assert GenerationStopped("stopped by Ctrl-C").exit_code == 130
    err = GenerationStopped("stopped by SIGTERM", exit_code=143)
    assert err.exit_code == 143 and str(err) == "stopped by SIGTERM"


def test_interrupted_is_a_keyboard_interrupt_with_exit_code_143():
    assert issubclass(Interrupted, KeyboardInterrupt)
    assert not issubclass(Interrupted, Exception)  # an ``except Exception`` does not swallow it
    assert Interrupted.exit_code == 143 and Interrupted().exit_code == 143
    with pytest.raises(KeyboardInterrupt):
        raise Interrupted()


def test_everything_exported_exists():
    assert sorted(errors.__all__) == sorted(set(errors.__all__))
    for name in errors.__all__:
        assert hasattr(errors, name), name
