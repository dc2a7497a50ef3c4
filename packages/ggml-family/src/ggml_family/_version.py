"""The version of ggml-family and the family API its hosts' extensions must speak."""

__version__ = "0.1.0"

#: The contract between this package and a host's ``_core`` extension: the registry functions
#: ``tools/family/src/ggml_registry.cpp`` binds (``backend_load``, ``module_score``,
#: ``set_log_handler`` ...) and the error classes. Bumped with ``GGML_FAMILY_API`` in
#: ``tools/family/include/family/binding.h`` whenever either side changes it.
FAMILY_API = 1
