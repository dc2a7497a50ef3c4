"""ggml's CUDA backend built with CUDA 12 (R525+ drivers): a family plugin (ggml_family.cuda)."""

from ggml_family.cuda import CudaBuild

PLUGIN = CudaBuild(__file__)
__getattr__ = PLUGIN.attribute
