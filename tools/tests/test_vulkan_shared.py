"""cyllama and cywhisper in one process share the one loaded ggml-vulkan-plugin (on Mesa's
lavapipe, tools/fixtures/vulkan_plugin.py): the first host loads the module, the second finds
its backend registered (state ``shared``), and both run on the same Vulkan device; the module is
mapped once.
"""

from __future__ import annotations

import pytest

pytest.importorskip("cyllama")
pytest.importorskip("cywhisper")

from tiny_llama import tiny_llama
from tiny_whisper import tiny_whisper
from vulkan_plugin import lavapipe_env, run_json, vulkan_site

CODE = """
import json, warnings
import numpy as np
import cyllama, cywhisper
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    llm = cyllama.LLM({llama!r}, n_ctx=128, n_threads=2)
    text = llm.generate("The capital of France is", max_tokens=6,
                        sampling=cyllama.Sampling.GREEDY).text
    w = cywhisper.Whisper({whisper!r}, n_threads=2, flash_attn=False)
    r = w.transcribe(np.zeros(16000, dtype=np.float32), fallback=False)
import ggml_vulkan_plugin, os
maps = [line.split()[-1] for line in open("/proc/self/maps") if "libggml-vulkan" in line]
print(json.dumps({{
    "cyllama": {{p["name"]: p["state"] for p in cyllama.info()["plugins"]}},
    "cywhisper": {{p["name"]: p["state"] for p in cywhisper.info()["plugins"]}},
    "layers": llm.layer_devices, "whisper_gpu": w.use_gpu, "text": text,
    "modules": sorted(set(maps)),
    "module": os.path.realpath(ggml_vulkan_plugin.library_path()),
    "warnings": [str(x.message) for x in caught]}}))
"""


def test_one_plugin_serves_cyllama_and_cywhisper() -> None:
    site = vulkan_site()
    out = run_json(CODE.format(llama=str(tiny_llama()), whisper=str(tiny_whisper())),
                   lavapipe_env(site))
    assert out["cyllama"] == {"vulkan": "loaded"}
    assert out["cywhisper"] == {"vulkan": "shared"}
    assert out["layers"] == {"Vulkan0": 3} and out["whisper_gpu"] is True
    assert out["text"]
    assert out["modules"] == [out["module"]]  # mapped once
    assert out["warnings"] == []
