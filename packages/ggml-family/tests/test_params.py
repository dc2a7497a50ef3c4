"""ggml_family.params: a bound parameter bundle is filled completely, by name, or not at all."""

from __future__ import annotations

import ggml_family
import pytest


class Bundle:
    """Shaped like a family::params<T> class: fields as attributes, ``_fields`` their names."""

    _fields = ("steps", "prompt")
    __slots__ = ("prompt", "steps")  # like a nanobind class: no other attribute can be set

    def __init__(self) -> None:
        self.steps = 0
        self.prompt = ""


def test_every_field_set_by_name() -> None:
    b = ggml_family.params(Bundle, steps=4, prompt="a cat")
    assert (b.steps, b.prompt) == (4, "a cat")


def test_missing_and_unknown_fields_are_named() -> None:
    with pytest.raises(TypeError) as e:
        ggml_family.params(Bundle, step=4, prompt="x", seed=1)
    assert str(e.value) == "Bundle: unknown field(s) seed, step; no value for steps"
    with pytest.raises(TypeError, match=r"^Bundle: no value for prompt$"):
        ggml_family.params(Bundle, steps=4)


def test_not_a_bundle() -> None:
    with pytest.raises(TypeError, match=r"^dict is not a parameter bundle \(no _fields\)$"):
        ggml_family.params(dict, a=1)
