"""Every public function, class, method and property has a docstring and full type hints."""

from __future__ import annotations

import inspect
import typing

import cyllama
import numpy
import pytest

# Names the modules import for type checking only (NumPy is imported where arrays are made,
# not when cyllama is imported; Unpack comes from typing_extensions before Python 3.11).
TYPE_CHECKING_NAMES = {"np": numpy, "Unpack": getattr(typing, "Unpack", None)}


def public_members() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name in cyllama.__all__:
        obj = getattr(cyllama, name)
        if name.startswith("__") or (isinstance(obj, type) and issubclass(obj, BaseException)):
            continue
        out.append((name, obj))
        if isinstance(obj, type):
            for attr, member in vars(obj).items():
                kinds = property | classmethod | staticmethod
                if attr.startswith("_") or not (callable(member) or isinstance(member, kinds)):
                    continue
                out.append((f"{name}.{attr}", member))
    return out


@pytest.mark.parametrize(("name", "obj"), public_members(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_documented_and_typed(name: str, obj: object) -> None:
    func = obj.fget if isinstance(obj, property) else obj
    assert inspect.getdoc(func), f"{name} has no docstring"
    if isinstance(func, type):
        return
    if isinstance(func, classmethod | staticmethod):
        func = func.__func__
    assert callable(func)
    hints = typing.get_type_hints(func, localns=TYPE_CHECKING_NAMES)
    params = [p for p in inspect.signature(func).parameters.values()
              if p.name not in ("self", "cls")]
    missing = [p.name for p in params if p.name not in hints]
    assert not missing, f"{name}: parameters without type hints: {missing}"
    assert "return" in hints, f"{name}: no return type"
