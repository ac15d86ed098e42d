"""Following one environment by watching it until its run has a result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from ..models import TestEnvironmentStatus
from .cluster import CliError, Environments
from .display import waiting_for_operator
from .outcome import is_current, is_done


class Progress(Protocol):
    def waiting(self, note: str) -> None: ...

    def update(self, status: TestEnvironmentStatus) -> None: ...


@dataclass(frozen=True)
class Outcome:
    last: dict[str, Any]  # the object as last seen
    generation: int
    timed_out: bool

    @property
    def current(self) -> bool:
        return is_current(self.last, self.generation)

    @property
    def status(self) -> TestEnvironmentStatus:
        return read_status(self.last) if self.current else TestEnvironmentStatus()


def read_status(obj: dict[str, Any]) -> TestEnvironmentStatus:
    """The status, tolerating fields a newer operator writes that this CLI does not know."""
    raw = dict(obj.get("status") or {})
    try:
        return TestEnvironmentStatus.model_validate(raw)
    except ValidationError:
        known = {f.alias or n for n, f in TestEnvironmentStatus.model_fields.items()}
        try:
            return TestEnvironmentStatus.model_validate({k: v for k, v in raw.items() if k in known})
        except ValidationError as exc:
            raise CliError(f"cannot read the status the operator wrote: {exc}") from None


def follow(envs: Environments, applied: dict[str, Any], deadline: float, progress: Progress) -> Outcome:
    """Watch the environment from the applied version until its run for the
    applied generation has finished (or, without tests, is Ready), or until
    `deadline` (time.monotonic())."""
    meta = applied["metadata"]
    generation = int(meta.get("generation") or 1)
    last = applied

    def show(obj: dict[str, Any]) -> None:
        if is_current(obj, generation):
            progress.update(read_status(obj))
        else:
            progress.waiting(waiting_for_operator(generation, (obj.get("status") or {}).get("observedGeneration")))

    show(last)
    if is_done(last, generation):
        return Outcome(last, generation, timed_out=False)
    for kind, obj in envs.watch(namespace=meta["namespace"], name=meta["name"],
                                resource_version=meta["resourceVersion"], deadline=deadline):
        if kind == "DELETED":
            raise CliError(f"testenvironment {meta['namespace']}/{meta['name']} was deleted while waiting for it")
        last = obj
        show(obj)
        if is_done(obj, generation):
            return Outcome(obj, generation, timed_out=False)
    return Outcome(last, generation, timed_out=True)
