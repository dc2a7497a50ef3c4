"""Threads: stable-diffusion.cpp's progress and abort callbacks are process-wide, so _core runs
one generation or upscale at a time (binding.cpp's run mutex); calls from other threads wait,
on one model or on several, and each gets its own progress and the pixels it would get alone."""

from __future__ import annotations

import threading
from pathlib import Path

import cysd
import numpy as np

SMALL = {"width": 64, "height": 64, "steps": 2, "as_pil": False}


def _run_in_threads(jobs: list[tuple[cysd.StableDiffusion, int]]) -> list[np.ndarray]:
    out: list[np.ndarray | None] = [None] * len(jobs)
    errors: list[BaseException] = []
    steps: dict[int, list[int]] = {i: [] for i in range(len(jobs))}

    def worker(i: int) -> None:
        sd, seed = jobs[i]
        try:
            (img,) = sd.txt2img("a cat", seed=seed, **SMALL,
                                progress=lambda s, n, t: steps[i].append(s))
            out[i] = np.asarray(img)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # Each call saw its own progress, every step once: no callback went to another call.
    assert all(s == [1, 2] for s in steps.values()), steps
    return [o for o in out if o is not None]


def test_one_model_from_several_threads(sd: cysd.StableDiffusion) -> None:
    seeds = [1, 2, 3, 4]
    want = [np.asarray(sd.txt2img("a cat", seed=s, **SMALL)[0]) for s in seeds]
    got = _run_in_threads([(sd, s) for s in seeds])
    assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def test_separate_models_in_parallel_threads(tiny_files: tuple[Path, Path],
                                             sd: cysd.StableDiffusion) -> None:
    model, taesd = tiny_files
    other = cysd.StableDiffusion(model, taesd=taesd, n_threads=1)
    want = [np.asarray(m.txt2img("a cat", seed=s, **SMALL)[0]) for m, s in ((sd, 5), (other, 6))]
    got = _run_in_threads([(sd, 5), (other, 6), (sd, 5), (other, 6)])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[2], want[0])
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[3], want[1])


def test_cancel_reaches_only_its_own_model(tiny_files: tuple[Path, Path],
                                           sd: cysd.StableDiffusion) -> None:
    model, taesd = tiny_files
    other = cysd.StableDiffusion(model, taesd=taesd, n_threads=1)
    other.cancel()  # nothing of `other` runs: it must not stop sd's generation
    (img,) = sd.txt2img("a cat", seed=1, **SMALL)
    assert np.asarray(img).shape == (64, 64, 3)
