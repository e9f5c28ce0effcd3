"""Plan files are parsed in a child process with a memory cap and a time limit.

A hostile file (a zip bomb, a YAML billion laughs, 300,000 rows) must cost the bot neither its
memory nor its event loop: parse_plan runs in `python -m bot.services.plan_worker`, which caps
its own address space (RLIMIT_AS) and CPU time before reading anything, and is killed when the
time limit passes. The caller awaits it without blocking the loop, so other chats are answered
meanwhile. What comes back is the Plan (pickled: the child is our own code, the file only ever
reaches it as bytes).
"""

from __future__ import annotations

import logging
import math
import pickle
import resource
import sys
from collections.abc import Set
from typing import Any

from bot.services.child import ChildFailed, ChildTimedOut, in_child
from bot.services.plans import DEFAULT_LIMITS, Plan, PlanError, PlanLimits, parse_plan

log = logging.getLogger(__name__)


def _refused(key: str, **params: object) -> Plan:
    return Plan(errors=[PlanError(("file", 0), key, dict(params))])


async def parse_plan_isolated(
    data: bytes,
    filename: str,
    *,
    known_units: Set[str] = frozenset(),
    known_groups: Set[str] = frozenset(),
    limits: PlanLimits = DEFAULT_LIMITS,
) -> Plan:
    """parse_plan in a worker process bounded by limits.memory_mb and limits.seconds."""
    # Plain types only: in the child this module is __main__, not bot.services.plan_worker.
    request = {
        "data": data,
        "filename": filename,
        "known_units": frozenset(known_units),
        "known_groups": frozenset(known_groups),
        "limits": limits,
    }
    try:
        plan = await in_child(__name__, request, limits.seconds)
    except ChildTimedOut:
        log.warning("plan file %r: parsing stopped after the %s s limit", filename, limits.seconds)
        return _refused("plan.too_slow", seconds=limits.seconds)
    except ChildFailed as exc:
        log.warning("plan file %r: the parser stopped (exit %s): %s", filename, exc.code, exc.last_line)
        return _refused("plan.too_complex", mb=limits.memory_mb)
    assert isinstance(plan, Plan)
    return plan


def _cap(limits: PlanLimits) -> None:
    """Cap this process: address space (a MemoryError instead of swapping the machine) and CPU
    seconds (a backstop to the parent's wall-clock limit)."""
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = math.ceil(limits.seconds) + 1  # whole seconds: setrlimit takes integers
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def main() -> int:
    # openpyxl imports numpy when it can, and numpy's OpenBLAS reserves memory per core: a plan
    # needs neither, and the address-space cap would be spent on them.
    sys.modules["numpy"] = None  # type: ignore[assignment]
    request: dict[str, Any] = pickle.loads(sys.stdin.buffer.read())
    limits: PlanLimits = request.pop("limits")
    _cap(limits)
    try:
        plan = parse_plan(request.pop("data"), request.pop("filename"), limits=limits, **request)
    except MemoryError:
        plan = _refused("plan.too_complex", mb=limits.memory_mb)
    sys.stdout.buffer.write(pickle.dumps(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
