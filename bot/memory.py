"""Giving memory the process has freed back to the system.

CPython hands objects bigger than 512 bytes (module and class dictionaries, code, the strings of
catalogs and queries) to the C library's malloc. When they are freed, glibc keeps the pages for
reuse unless they sit at the very top of its heap, so a burst of temporary work (start-up:
compiling, building the application; later: a report built, a plan file read) leaves the
resident size higher for the rest of the process's life. glibc's malloc_trim(0) returns every
whole free page to the kernel; measured on `tiendo run` at rest: about 1 MiB (bench/footprint.py).

Other C libraries (musl, macOS) have no malloc_trim: there this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
from functools import cache
from typing import Any

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim  # the C library this process already uses
    except (AttributeError, OSError):
        return None


def give_back_free_memory() -> bool:
    """Return the C library's free pages to the system; False where it cannot (not glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
