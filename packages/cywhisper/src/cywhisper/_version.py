"""The package version: the same as pyproject.toml's (a test compares them), without the cost of
reading the installed metadata at import."""

__version__ = "0.1.0"
