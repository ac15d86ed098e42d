"""Whole-spec checks that a CRD schema cannot express: references between
components, dependency cycles, and the operator's copy policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from .build.copies import SecretRule
from .models import TestEnvironmentSpec
from .ordering import start_graph


@dataclass(frozen=True)
class SpecError:
    field: str  # a path into the resource, e.g. spec.services[1].dependsOn
    message: str  # what is wrong and how to fix it

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _instead(options: set[str]) -> str:
    return f"use one of {sorted(options)} or remove it" if options else "remove it"


def _cycle(graph: dict[str, list[str]]) -> list[str] | None:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def _credential_errors(spec: TestEnvironmentSpec, secret_rules: Mapping[str, SecretRule]) -> list[SpecError]:
    """A borrowed Secret key (env[].valueFrom.secretKeyRef) must come from a
    namespace, and a name, the administrator's config.copySecrets allows."""
    errors = []
    for field in ("services", "seed", "tests"):
        for i, item in enumerate(getattr(spec, field)):
            for j, var in enumerate(item.env):
                if var.value_from is None:
                    continue
                ref = var.value_from.secret_key_ref
                rule = secret_rules.get(ref.namespace)
                if rule is not None and rule.allows_name(ref.name):
                    continue
                allowed = ", ".join(sorted(secret_rules)) or "none are configured"
                why = (f"Secrets of namespace {ref.namespace!r} may not be used (allowed: {allowed})" if rule is None
                       else f"only {rule.describe()} of namespace {ref.namespace!r} may be used")
                errors.append(SpecError(
                    f"spec.{field}[{i}].env[{j}].valueFrom.secretKeyRef",
                    f"{why}; ask the operator's administrator to allow it in config.copySecrets, "
                    "or refer to an allowed Secret",
                ))
    return errors


def validate(
    spec: TestEnvironmentSpec,
    copy_allowlist: frozenset[str],
    secret_rules: Mapping[str, SecretRule] | None = None,
) -> list[SpecError]:
    """secret_rules None: the credential policy is not checked (the CLI does
    not know the operator's configuration)."""
    errors: list[SpecError] = []
    components = {c.name for c in spec.components()}
    datastores = {d.name for d in spec.datastores}
    seeds = {s.name for s in spec.seed}
    suites = {t.name for t in spec.tests}

    for field in ("datastores", "stubs", "services"):
        for i, item in enumerate(getattr(spec, field)):
            for dep in item.depends_on:
                if dep not in components:
                    errors.append(
                        SpecError(
                            f"spec.{field}[{i}].dependsOn",
                            f"{dep!r} is not a datastore, stub or service of this environment; "
                            + _instead(components - {item.name}),
                        )
                    )
                elif dep == item.name:
                    errors.append(
                        SpecError(f"spec.{field}[{i}].dependsOn", f"{item.name!r} depends on itself; remove it")
                    )
    for i, svc in enumerate(spec.services):
        if svc.copy_from and svc.copy_from.namespace not in copy_allowlist:
            allowed = ", ".join(sorted(copy_allowlist)) or "none are configured"
            errors.append(
                SpecError(
                    f"spec.services[{i}].copyFrom.namespace",
                    f"copying from namespace {svc.copy_from.namespace!r} is not allowed (allowed: {allowed}); "
                    "ask the operator's administrator to add it to copyAllowlist, or use image",
                )
            )
    if secret_rules is not None:
        errors += _credential_errors(spec, secret_rules)
    for i, seed in enumerate(spec.seed):
        if seed.datastore is not None and seed.datastore not in datastores:
            errors.append(
                SpecError(
                    f"spec.seed[{i}].datastore",
                    f"{seed.datastore!r} is not a datastore of this environment; "
                    + (f"use one of {sorted(datastores)}" if datastores else "declare it under spec.datastores"),
                )
            )
        for need in seed.needs:
            if need not in seeds:
                errors.append(
                    SpecError(
                        f"spec.seed[{i}].needs",
                        f"{need!r} is not a seed of this environment; " + _instead(seeds - {seed.name}),
                    )
                )
    for i, suite in enumerate(spec.tests):
        for need in suite.needs:
            if need not in suites:
                errors.append(
                    SpecError(
                        f"spec.tests[{i}].needs",
                        f"{need!r} is not a test suite of this environment; " + _instead(suites - {suite.name}),
                    )
                )

    if errors:  # a cycle check over dangling references would only add noise
        return errors
    graphs = {
        "spec.*.dependsOn": {c.name: list(c.depends_on) for c in spec.components()},
        "spec.seed[].needs": {s.name: list(s.needs) for s in spec.seed},
        "spec.tests[].needs": {t.name: list(t.needs) for t in spec.tests},
    }
    for field, graph in graphs.items():
        if cycle := _cycle(graph):
            errors.append(
                SpecError(field, f"dependency cycle {' -> '.join(reversed(cycle))}; remove one of these edges")
            )
    if not errors and (cycle := _cycle(start_graph(spec))):
        # Each graph alone is fine, but together (seeds wait for datastores,
        # services for the seeds filling theirs) nothing could ever start.
        errors.append(
            SpecError(
                "spec",
                f"dependency cycle across seeds and dependsOn: {' -> '.join(reversed(cycle))}; "
                "give the seed a datastore, or drop one dependsOn",
            )
        )
    return errors
