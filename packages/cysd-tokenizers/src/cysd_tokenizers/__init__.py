"""stable-diffusion.cpp's larger tokenizer vocabularies, for cysd.

Qwen2/Qwen3 (Qwen-Image, Z-Image), Mistral (FLUX.2) and UMT5 (Wan) merges and vocabularies, the
bytes upstream compiles into its library, as xz files in ``tokenizers/``. Nothing to import:
cysd finds them (``pip install 'cysd[tokenizers]'``).
"""

__version__ = "0.1.0"
