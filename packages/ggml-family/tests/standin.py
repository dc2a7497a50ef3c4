"""A stand-in for a host's ``_core`` extension, for testing ggml_family's policy without ggml.

It has the functions ``packages/ggml-family/native/src/`` binds, over a registry kept in
Python: CPU modules are empty files in ``<dir>/lib`` with scores chosen by the test; loading one
registers a CPU backend with one device. The real extension is exercised by every host's tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import ggml_family


class StandInCore(ModuleType):
    """A module object shaped like ``<host>._core``."""

    def __init__(self, folder: Path, scores: dict[str, int], *, api: int = ggml_family.FAMILY_API,
                 fingerprint: str = "0123456789ab") -> None:
        super().__init__("standin._core")
        lib = folder / "lib"
        lib.mkdir(parents=True)
        for variant in scores:
            (lib / f"libggml-cpu-{variant}.so").write_bytes(b"")
        self.__file__ = str(folder / "_core.so")
        self.api = api
        self.fp = fingerprint
        self.scores = scores
        self.registry: dict[str, list[dict[str, Any]]] = {}
        self.loaded: list[str] = []  # paths given to backend_load, in order
        self.scored: list[str] = []  # paths given to module_score
        self.handler: Callable[[int, str], None] | None = None
        self.min_level = 0
        self.error_classes: tuple[type[Exception], ...] = ()  # set_error_classes' arguments

    def family_api(self) -> int:
        return self.api

    def fingerprint(self) -> str:
        return self.fp

    def ggml_version(self) -> str:
        return "0.9.4"

    def backend_api_version(self) -> int:
        return 2

    def set_error_classes(self, *classes: type[Exception]) -> None:
        self.error_classes = classes

    def set_log_handler(self, handler: Callable[[int, str], None] | None,
                        min_level: int = 3) -> None:
        self.handler, self.min_level = handler, min_level

    def module_score(self, path: str) -> tuple[int, str]:
        self.scored.append(path)
        variant = Path(path).stem.removeprefix("libggml-cpu-")
        score = self.scores[variant]
        return score, "" if score >= 0 else "cannot open"

    def backend_registered(self, name: str) -> bool:
        return name in self.registry

    def backend_load(self, path: str) -> tuple[str, list[str]]:
        self.loaded.append(path)
        self.registry["CPU"] = [{"name": "CPU", "description": Path(path).name, "type": "cpu",
                                 "memory_free": 0, "memory_total": 2**30}]
        return "CPU", []

    def backends(self) -> list[dict[str, Any]]:
        return [{"name": n, "devices": d, "features": []} for n, d in self.registry.items()]
