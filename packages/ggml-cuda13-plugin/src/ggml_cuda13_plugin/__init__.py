"""ggml's CUDA backend built with CUDA 13 (R580+ drivers), a plugin of the ggml wheel family.

The family's hosts (cyllama, cywhisper, cysd) find it through the ``ggml.backends`` entry point.
Everything it provides (``FINGERPRINT``, ``initialize()``, ``library_path()``, the driver check
``driver_problem()`` ...) comes from :class:`ggml_family.cuda.CudaBuild`; nothing loads CUDA until
``initialize()`` runs.
"""

from ggml_family.cuda import CudaBuild

PLUGIN = CudaBuild(__file__)


def __getattr__(name: str) -> object:
    return getattr(PLUGIN, name)
