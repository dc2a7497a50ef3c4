"""The version of ggml-family and the family API its hosts' extensions must speak."""

__version__ = "0.1.0"

#: The contract between this package and a host's ``_core`` extension: the functions the
#: family's native half binds (``native/src/``: ``backend_load``, ``module_score``,
#: ``set_log_handler``, ``set_error_classes`` ...). Bumped with ``GGML_FAMILY_API`` in
#: ``native/include/family/binding.h`` whenever either side changes it. 2: the error classes
#: are this package's (``ggml_family.errors``), set on each ``_core`` by :func:`register`.
FAMILY_API = 2
