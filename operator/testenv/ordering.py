"""What waits for what: components on their dependencies, seeds on their
datastores and needs, components on the seeds that fill their datastores.
The planner follows these edges; validation checks them for deadlocks."""

from __future__ import annotations

from graphlib import TopologicalSorter

from .models import Datastore, Seed, Service, Stub, TestEnvironmentSpec

Component = Datastore | Stub | Service


def seed_fills(spec: TestEnvironmentSpec) -> dict[str, set[str]]:
    """The datastores each seed fills, through its own `datastore` and its needs."""
    by_name = {s.name: s for s in spec.seed}
    result: dict[str, set[str]] = {}
    for name in TopologicalSorter({s.name: s.needs for s in spec.seed}).static_order():
        seed = by_name[name]
        targets = {seed.datastore} if seed.datastore else set()
        for need in seed.needs:
            targets |= result.get(need, set())
        result[name] = targets
    return result


def gating_seeds(spec: TestEnvironmentSpec, component: Component, fills: dict[str, set[str]]) -> list[str]:
    """Seeds that must succeed before a component starts: those filling a
    datastore it depends on; a seed that fills no datastore gates every
    component that depends on any datastore."""
    if isinstance(component, Datastore):
        return []
    datastore_deps = set(component.depends_on) & {d.name for d in spec.datastores}
    if not datastore_deps:
        return []
    return [name for name, targets in fills.items() if not targets or targets & datastore_deps]


def seed_waits_for(spec: TestEnvironmentSpec, seed: Seed) -> list[str]:
    """The datastores a seed waits for: its own, or every one (its image may use any URL)."""
    return [seed.datastore] if seed.datastore else [d.name for d in spec.datastores]


def start_graph(spec: TestEnvironmentSpec) -> dict[str, list[str]]:
    """Every start-up edge at once, nodes named `kind/name`."""
    fills = seed_fills(spec)
    graph: dict[str, list[str]] = {}
    for component in spec.components():
        graph[f"component/{component.name}"] = [f"component/{d}" for d in component.depends_on] + [
            f"seed/{s}" for s in gating_seeds(spec, component, fills)
        ]
    for seed in spec.seed:
        graph[f"seed/{seed.name}"] = [f"component/{d}" for d in seed_waits_for(spec, seed)] + [
            f"seed/{n}" for n in seed.needs
        ]
    return graph
