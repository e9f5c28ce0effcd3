"""Work done in a child process of the bot: `python -m <module>`, the request pickled on its
standard input and the answer pickled on its standard output (the child is our own code, so
both sides are trusted). The bot awaits it without blocking its event loop, and kills it when
its time is up. Used for plan files (plan_worker.py) and the bot's report files (report_worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
from typing import Any


class ChildTimedOut(Exception):
    """The child did not answer within its time and was killed."""


class ChildFailed(Exception):
    """The child exited without an answer: its exit code and the last line of its error output."""

    def __init__(self, code: int | None, last_line: str) -> None:
        super().__init__(f"exit {code}: {last_line}")
        self.code = code
        self.last_line = last_line


async def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just ended
        process.kill()
    await process.wait()


async def in_child(module: str, request: Any, seconds: float) -> Any:
    """Run `python -m module` with request; its answer (ChildTimedOut, ChildFailed)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds):  # not wait_for, which may lose a cancellation (3.11)
            out, err = await process.communicate(pickle.dumps(request))
    except TimeoutError:
        await _stop(process)
        raise ChildTimedOut from None
    except BaseException:  # cancelled (the bot is stopping): the child does not outlive the call
        await _stop(process)
        raise
    if process.returncode != 0 or not out:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise ChildFailed(process.returncode, last[0])
    return pickle.loads(out)
