"""Where a stage's time goes: wall seconds per part, logged as one line at the end of its run."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def timed(seconds: dict[str, float], part: str) -> Iterator[None]:
    """Add the wall time of the block to seconds[part]."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - start


def parts_text(seconds: dict[str, float]) -> str:
    """`part 1.2 s, other 0.3 s`, in the order the parts ran."""
    return ", ".join(f"{part} {s:.1f} s" for part, s in seconds.items())
