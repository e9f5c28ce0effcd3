"""Memory the bot has freed goes back to the system (bot/memory.py), where the C library allows."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Half of 40 MiB of 64 KiB blocks freed, every other one: holes glibc keeps (free() only gives
# back the top of its heap), until malloc_trim hands their whole pages back.
PROBE = """
import json
from bot.memory import give_back_free_memory

def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

blocks = [bytearray(64 * 1024) for _ in range(640)]
for block in blocks:
    block[::4096] = b"x" * len(block[::4096])  # touch every page
del blocks[::2]
before = rss()
given = give_back_free_memory()
print(json.dumps({"given": given, "before": before, "after": rss()}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_goes_back_to_the_system() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["given"] is True
    assert figures["before"] - figures["after"] > 10  # MiB: most of the 20 freed
