"""One error hierarchy: every exception class Magpie defines derives from MagpieError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import magpie
import pytest

import chalicelib
from chalicelib.errors import EXIT_CODES, MagpieError


def _modules(package) -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
        if ".dashboard.static" not in info.name
    ]


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for name in _modules(chalicelib) + _modules(magpie):
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if value.__module__ == name and issubclass(value, BaseException):
                found.append(value)
    return found


def test_the_project_defines_exceptions_at_all():
    # Guards the walk below: an empty list would make the hierarchy test pass vacuously.
    assert len(_exception_classes()) >= 20


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_exception_class_derives_from_magpie_error(cls):
    assert issubclass(cls, MagpieError), f"{cls.__qualname__} does not derive from MagpieError"


def test_every_exit_code_is_documented():
    codes = {cls.exit_code for cls in [MagpieError, *MagpieError.__subclasses__()]}
    assert codes <= set(EXIT_CODES)
    assert 0 not in codes
