"""tools/fixtures/cycles.py: the leak measure sees memory a cycle keeps and not memory it frees
(the allowance the leak tests give is 10 MB)."""

from __future__ import annotations

from cycles import rss_growth

# malloc'ed blocks the size of a tensor: freed ones stay in glibc's arenas unless trimmed
SETUP = """
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
kept = []

def touch(size):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    return block
"""


def test_a_leak_raises_the_floor() -> None:
    before, after = rss_growth(SETUP, "kept.append(touch(1 << 20))", settle=4, cycles=20)
    # each end is the lowest of its last quarter: cycle 4 of the settling run (4 MB kept), cycle
    # 16 of the measured one (20 MB kept)
    assert 15 < after - before < 17, (before, after)


def test_freed_memory_is_not_a_leak() -> None:
    # 2000 small blocks per cycle (arena memory, not mmapped), all freed, every cycle
    body = "blocks = [touch(24 << 10) for _ in range(2000)]\nfor b in blocks: libc.free(b)"
    before, after = rss_growth(SETUP, body, settle=4, cycles=20)
    assert abs(after - before) < 2, (before, after)
