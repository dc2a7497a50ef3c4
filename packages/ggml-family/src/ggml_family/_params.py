"""Filling a bound parameter bundle (``family::params<T>`` in C++) from Python.

A host's Python layer validates its public arguments (dataclasses such as ``Sampling`` or
``Decoding``) and hands the C++ side one struct per upstream call, set field by field. Every
field must be given and every name must be one of the struct's: a misspelt or forgotten name is
an error here, never a silent upstream default.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["params"]

T = TypeVar("T")


def params(cls: type[T], /, **values: Any) -> T:
    """A new ``cls`` (a bound parameter bundle) with every field set from ``values``.

    TypeError names the missing or unknown fields; a value of the wrong type is the TypeError
    nanobind raises for that field."""
    fields: tuple[str, ...] = getattr(cls, "_fields", ())
    if not fields:
        raise TypeError(f"{cls.__name__} is not a parameter bundle (no _fields)")
    unknown = sorted(set(values) - set(fields))
    missing = [f for f in fields if f not in values]
    if unknown or missing:
        problems = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"no value for {', '.join(missing)}"] if missing else [])
        raise TypeError(f"{cls.__name__}: {'; '.join(problems)}")
    out = cls()
    for name in fields:
        try:
            setattr(out, name, values[name])
        except TypeError as e:
            raise TypeError(f"{cls.__name__}.{name} = {values[name]!r}: {e}") from None
    return out
