"""When waiting is over and what the exit code says. Pure.

Exit codes, the contract with CI pipelines:
  0  the tests passed (Succeeded), or a preview environment is Ready
  1  tests failed (Failed)
  2  the environment could not produce a result (Error, TimedOut), the wait
     timed out, the manifest is invalid, or the cluster could not be used
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..models import FINISHED_PHASES, Phase

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

_FINISHED = {str(p) for p in FINISHED_PHASES}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def exit_code(phase: str | None) -> int:
    """The exit code for the phase an environment ended in (None: the wait gave up)."""
    if phase in (Phase.SUCCEEDED, Phase.READY):
        return EXIT_PASSED
    if phase == Phase.FAILED:
        return EXIT_FAILED
    return EXIT_ERROR


def is_current(obj: Mapping[str, Any], generation: int) -> bool:
    """The status describes the spec we applied (or a later one), not an older run."""
    observed = (obj.get("status") or {}).get("observedGeneration")
    return observed is not None and int(observed) >= generation


def has_tests(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("tests"))


def is_done(obj: Mapping[str, Any], generation: int) -> bool:
    """A finished phase for our generation; for a preview environment (no tests), Ready."""
    if not is_current(obj, generation):
        return False
    phase = (obj.get("status") or {}).get("phase")
    return phase in _FINISHED or (phase == Phase.READY and not has_tests(obj))


def parse_duration(text: str) -> float:
    """'30m', '1h30m', '90s', '45' (seconds) -> seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{text!r} is not a duration; use e.g. 90s, 30m, 1h30m")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))


def stuck_message(obj: Mapping[str, Any] | None, generation: int) -> str:
    """Where a wait that gave up was stuck, for the timeout error."""
    status = (obj or {}).get("status") or {}
    if not is_current(obj or {}, generation):
        seen = status.get("observedGeneration")
        state = "no status yet" if seen is None else f"its status is of generation {seen}"
        return (f"the operator has not picked up generation {generation} ({state}); "
                "is the operator running? Check its pods and logs")
    phase = status.get("phase") or "Pending"
    message = status.get("message")
    return f"stuck in phase {phase}" + (f": {message}" if message else "")
