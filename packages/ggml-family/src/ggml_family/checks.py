"""Argument checks shared by the family's Python layers.

Every public parameter of cyllama, cywhisper and cysd is validated at the call with these, so
that the same mistake gives the same exception type and message in every package: a wrong type
is a TypeError, a value out of range a ValueError, and both name the parameter.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["check_choice", "check_float", "check_int", "check_model_file", "check_settings",
           "check_threads", "is_loopback", "read_head"]

T = TypeVar("T")


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an int within ``[minimum, maximum]``; TypeError / ValueError naming
    ``name`` otherwise (a bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_float(name: str, value: object, low: float | None = None, high: float | None = None,
                *, low_open: bool = False) -> float:
    """``value`` as a float if it is a finite number within the bounds (``low_open``: ``low``
    itself excluded); TypeError for a non-number (or a bool), ValueError naming ``name`` and
    the bounds (NaN and infinities are out of any; without bounds: "must be finite")."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) and low is None and high is None:
        raise ValueError(f"{name} must be finite, got {value}")
    below = low is not None and (v < low or (low_open and v == low))
    above = high is not None and v > high
    if below or above or not math.isfinite(v):
        if low is not None and high is not None:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        elif low is not None:
            bound = f"{'>' if low_open else '>='} {low:g}"
        else:
            bound = f"<= {high:g}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return v


def check_choice(name: str, value: object, known: tuple[str, ...]) -> str:
    """``value`` if it is one of ``known``; TypeError / ValueError listing the choices."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if value not in known:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")
    return value


def check_threads(name: str, value: int | None) -> int:
    """A thread count: ``value``, or every core when None."""
    return check_int(name, (os.cpu_count() or 4) if value is None else value, 1, 512)


def read_head(path: str | os.PathLike[str], what: str, n: int = 12) -> tuple[Path, bytes]:
    """``path`` and its first ``n`` bytes; FileNotFoundError / IsADirectoryError naming
    ``what``; TypeError for something that is not a path."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} path must be a str or os.PathLike, not {type(path).__name__}")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, f"{what} file not found", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, f"{what} path is a directory, not a file", str(p))
    with p.open("rb") as f:
        return p, f.read(n)


def check_model_file(path: str | os.PathLike[str], *, magic: bytes, kind: str,
                     error: type[Exception], what: str = "model",
                     hints: Mapping[bytes, str] | None = None) -> Path:
    """``path`` if it exists and starts with ``magic``; otherwise ``error`` (the package's
    ModelLoadError) naming the problem. ``hints``: a note for files of another known kind, by
    their first bytes."""
    p, head = read_head(path, what, len(magic))
    if not head:
        raise error(f"{what} file {p} is empty")
    if head != magic:
        hint = (hints or {}).get(head, "")
        raise error(f"{what} file {p} is not a {kind} (it starts with {head!r}, not {magic!r})"
                    f"{hint}")
    return p


def check_settings(name: str, value: T | None, cls: type[T], options: Mapping[str, Any], *,
                   default: T | None = None) -> T:
    """A settings object (a frozen, self-checking dataclass such as ``Decoding``): ``value``, or
    ``default`` (else ``cls()``) when None, with the fields named in ``options`` replaced and
    checked again. TypeError names ``name`` for another type, or the unknown field."""
    if value is not None and not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__module__.split('.')[0]}.{cls.__name__}, not "
                        f"{type(value).__name__}")
    base = value if value is not None else default if default is not None else cls()
    return dataclasses.replace(base, **options) if options else base  # type: ignore[type-var]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, or an address, IPv6 possibly in brackets) only reaches this
    machine: servers of the family bind elsewhere only with a warning or a key."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
