"""The `testenv` command: up, down, status, list, logs and report.

A thin edge: manifests are prepared in manifest.py, the cluster is reached
through cluster.py, output is drawn by display.py, and exit codes are decided
in outcome.py.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from ..build.jobs import job_name
from ..junit import merged_junit_xml
from ..models import TestEnvironmentStatus
from ..report import ReportError, summarize, termination_message
from ..results import Owner, suites_of
from . import display, fetch
from .cluster import CliError, Environments, connect
from .follow import Outcome, follow, read_status
from .manifest import ManifestError, check, load_manifest, prepare
from .outcome import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    exit_code,
    parse_duration,
    stuck_message,
)

app = typer.Typer(
    name="testenv",
    help="Ephemeral test environments on Kubernetes: bring one up, follow its tests, report, tear it down.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

Kubeconfig = Annotated[
    str | None,
    typer.Option("--kubeconfig", help="Path to the kubeconfig (default: $KUBECONFIG, then ~/.kube/config).",
                 show_default=False),
]
Context = Annotated[str | None, typer.Option("--context", help="The kubeconfig context to use.", show_default=False)]
Namespace = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="The namespace of the TestEnvironment (default: the context's).",
                 show_default=False),
]


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    # Logs of CI jobs are read in wide windows; rich's 80 columns wrap tables.
    width = None if terminal or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, width=width, highlight=False)


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    _console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _handles_errors(command: F) -> F:
    """Errors for people, not tracebacks: print what went wrong and exit with its code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ManifestError as exc:
            lines = "".join(f"\n  {p}" for p in exc.problems)
            raise _fail(f"the manifest is invalid; nothing was sent to the cluster:{lines}") from None
        except CliError as exc:
            raise _fail(exc.message, exc.code) from None

    return wrapper  # type: ignore[return-value]


def _seconds(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from None


# --- up ---------------------------------------------------------------------------


@app.command()
@_handles_errors
def up(
    *,
    file: Annotated[str, typer.Option("--file", "-f", help="The TestEnvironment manifest ('-' for stdin).")],
    namespace: Namespace = None,
    name: Annotated[str | None, typer.Option("--name", help="Replace metadata.name, e.g. pr-123.",
                                             show_default=False)] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a spec field, list items by name: services.api.image=repo/api:sha, "
                                   "tests.e2e.shards=2, lifecycle.ttlSecondsAfterFinished=60. Repeatable; "
                                   "escape dots in keys with a backslash.", show_default=False),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the run until it has a result; exit 0/1/2.")] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits: 90s, 30m, 1h.")] = "30m",
    junit: Annotated[Path | None, typer.Option("--junit", help="With --wait: write the result as JUnit XML here.",
                                               show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the resource; send nothing.")] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Create or update a TestEnvironment (server-side apply) and, with --wait, follow it to a result."""
    if junit is not None and not wait:
        raise CliError("--junit needs --wait: the report is written once the run has a result")
    wait_seconds = _seconds(timeout, "--timeout")
    body = prepare(load_manifest(file), namespace=namespace, name=name, overrides=overrides or [])
    check({**body, "metadata": {**body["metadata"], "namespace": body["metadata"].get("namespace") or "default"}})
    out = _console()
    if dry_run:
        body["metadata"].setdefault("namespace", "default")
        out.print(yaml.safe_dump(body, sort_keys=False), markup=False, end="")
        return

    envs = Environments(connect(kubeconfig, context))
    body["metadata"].setdefault("namespace", envs.connection.namespace)
    meta = body["metadata"]
    before = envs.get(namespace=meta["namespace"], name=meta["name"])
    if before is not None and before["metadata"].get("deletionTimestamp"):
        raise CliError(f"testenvironment {meta['namespace']}/{meta['name']} is being deleted; "
                       f"wait for it (`testenv down {meta['name']} -n {meta['namespace']} --wait`) and run up again")
    deadline = time.monotonic() + wait_seconds
    applied = envs.apply(body)
    generation = int(applied["metadata"].get("generation") or 1)
    if before is None:
        verb = "created"
    elif int(before["metadata"].get("generation") or 0) != generation:
        verb = "updated: a new run starts"
    else:
        verb = "unchanged (same spec: no new run)"
    out.print(f"testenvironment {meta['namespace']}/{meta['name']} {verb} (generation {generation})",
              markup=False)
    if not wait:
        return

    progress_type = display.LiveProgress if out.is_terminal else display.PlainProgress
    try:
        with progress_type(out, namespace=meta["namespace"], name=meta["name"]) as progress:
            outcome = follow(envs, applied, deadline, progress)
    except KeyboardInterrupt:
        raise _fail(f"stopped waiting; the environment goes on. See `testenv status {meta['name']} "
                    f"-n {meta['namespace']}`, or remove it with `testenv down {meta['name']} -n {meta['namespace']}`.",
                    EXIT_INTERRUPTED) from None

    raise typer.Exit(_report_outcome(out, envs, {**meta, "uid": applied["metadata"].get("uid", "")}, outcome,
                                     timeout, junit))


def _kept_reports(envs: Environments, owner: Owner, status: TestEnvironmentStatus) -> dict[str, list[tuple[str, bytes]]]:
    """The run's real JUnit reports by suite; none (with a note) when they cannot be had."""
    if status.results is None or status.results.expired:
        return {}
    try:
        index = fetch.kept_run(envs, owner, status.run, status.results.endpoint)
        return fetch.suite_reports(envs, index) if index is not None else {}
    except CliError as exc:
        _console(stderr=True).print(f"the run's reports could not be fetched, so the JUnit file has the "
                                    f"counts only: {exc.message}", markup=False)
        return {}


def _write_junit(junit: Path, name: str, status: TestEnvironmentStatus,
                 reports: dict[str, list[tuple[str, bytes]]], problem: str | None) -> None:
    """The real reports merged; the status's counts for suites without one."""
    try:
        junit.write_text(merged_junit_xml(name, status, reports, problem))
    except OSError as exc:
        raise CliError(f"cannot write the JUnit report to {junit}: {exc.strerror or exc}") from None


def _report_outcome(out: Console, envs: Environments, meta: dict[str, Any], outcome: Outcome, timeout: str,
                    junit: Path | None) -> int:
    """The result table and summary, the JUnit file, and the exit code."""
    status = outcome.status
    problem = None
    if outcome.timed_out:
        problem = f"timed out after {timeout} waiting for {meta['namespace']}/{meta['name']}: " + \
            stuck_message(outcome.last, outcome.generation)
    if outcome.current:
        if status.tests:
            out.print(display.result_table(status))
        out.print(display.summary_line(meta["name"], status), markup=False)
        if status.phase != "Succeeded" and (reasons := display.reason_lines(status)):
            out.print("reasons:\n" + "\n".join(reasons), markup=False)
        if failures := display.failure_lines(status):
            out.print("failures:\n" + "\n".join(failures), markup=False)
    if junit is not None:
        owner = Owner(namespace=meta["namespace"], name=meta["name"], uid=meta.get("uid", ""))
        _write_junit(junit, meta["name"], status, _kept_reports(envs, owner, status), problem)
        out.print(f"JUnit report: {junit}", markup=False)
    if problem:
        raise _fail(problem)
    return exit_code(status.phase)


# --- down ---------------------------------------------------------------------------


@app.command()
@_handles_errors
def down(
    *,
    namespace: Namespace = None,
    name: Annotated[str, typer.Argument(help="The TestEnvironment to delete.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until it and its namespace are gone.")] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long --wait waits.")] = "5m",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Delete a TestEnvironment; the operator deletes its namespace and everything in it."""
    deadline = time.monotonic() + _seconds(timeout, "--timeout")
    envs = Environments(connect(kubeconfig, context))
    ns = namespace or envs.connection.namespace
    out = _console()
    if not envs.delete(namespace=ns, name=name):
        out.print(f"testenvironment {ns}/{name} not found: nothing to delete", markup=False)
        return
    out.print(f"testenvironment {ns}/{name} deleted", markup=False)
    if not wait:
        return
    current = envs.get(namespace=ns, name=name)
    if current is None:
        out.print("gone", markup=False)
        return
    target = (current.get("status") or {}).get("namespace")
    if target:
        out.print(f"waiting for namespace {target} to be deleted", markup=False)
    for kind, _ in envs.watch(namespace=ns, name=name, resource_version=current["metadata"]["resourceVersion"],
                              deadline=deadline):
        if kind == "DELETED":
            out.print("gone", markup=False)
            return
    raise CliError(f"testenvironment {ns}/{name} still exists after {timeout}: its finalizer waits for "
                   f"namespace {target or '(unknown)'} to be deleted. Check that namespace's remaining objects "
                   "and the operator's logs.")


# --- status, list ---------------------------------------------------------------------


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


@app.command()
@_handles_errors
def status(
    *,
    namespace: Namespace = None,
    name: Annotated[str, typer.Argument(help="The TestEnvironment.")],
    output: Annotated[str, typer.Option("--output", "-o", help="table, yaml or json.")] = "table",
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Show an environment: phase, components, seeds, suites and conditions."""
    if output not in ("table", "yaml", "json"):
        raise CliError(f"--output {output!r}: use table, yaml or json")
    envs = Environments(connect(kubeconfig, context))
    ns = namespace or envs.connection.namespace
    obj = _without_managed_fields(envs.require(namespace=ns, name=name))
    out = _console()
    if output == "json":
        out.print(json.dumps(obj, indent=2), markup=False, soft_wrap=True)
    elif output == "yaml":
        out.print(yaml.safe_dump(obj, sort_keys=False), markup=False, end="", soft_wrap=True)
    else:
        out.print(display.status_view(obj, display.now_utc()))


@app.command("list")
@_handles_errors
def list_(
    namespace: Namespace = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """List environments like `kubectl get tenv`: NAME, PHASE, READY, TESTS, AGE, EXPIRES."""
    envs = Environments(connect(kubeconfig, context))
    ns = None if all_namespaces else namespace or envs.connection.namespace
    items = envs.list(ns)
    out = _console()
    if not items:
        where = "any namespace" if ns is None else f"namespace {ns}"
        _console(stderr=True).print(f"no TestEnvironments in {where}", markup=False)
        return
    out.print(display.list_table(items, display.now_utc(), all_namespaces=ns is None))


# --- results ------------------------------------------------------------------------------


@app.command()
@_handles_errors
def results(
    *,
    namespace: Namespace = None,
    name: Annotated[str, typer.Argument(help="The TestEnvironment.")],
    run: Annotated[int | None, typer.Option("--run", help="Which run (default: the latest).",
                                            show_default=False)] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write the run's real JUnit reports, merged, here.",
                                               show_default=False)] = None,
    artifacts: Annotated[Path | None, typer.Option("--artifacts", help="Write every kept file and log tail "
                                                   "under this directory.", show_default=False)] = None,
    show_logs: Annotated[bool, typer.Option("--logs", help="Print the log tails of the containers that failed.")]
    = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """What a run kept: reports, artifacts and failed containers' logs, also after its namespace is gone."""
    envs = Environments(connect(kubeconfig, context))
    ns = namespace or envs.connection.namespace
    obj = envs.require(namespace=ns, name=name)
    status = TestEnvironmentStatus.model_validate(obj.get("status") or {})
    owner = Owner(namespace=ns, name=name, uid=obj["metadata"]["uid"])
    wanted = status.run if run is None else run
    index = fetch.kept_run(envs, owner, wanted, status.results.endpoint if status.results else None)
    if index is None:
        kept = envs.results_runs(namespace=ns, uid=owner.uid)
        where = f"runs with results: {', '.join(map(str, kept))}" if kept else "no run has results kept"
        expired = " (they outlived the retention and were deleted)" if status.results and status.results.expired \
            else ""
        raise CliError(f"no results are kept for run {wanted} of {ns}/{name}{expired}; {where}")
    out = _console()
    out.print(display.results_table(index))
    notes = display.results_notes(index)
    if status.results is not None and wanted == status.run:
        notes += [f"  {note}" for note in status.results.notes]  # what the index cannot list: tails not kept
    if notes:
        out.print("notes:\n" + "\n".join(notes), markup=False)
    if junit is not None:
        # An earlier run's suites are known from its reports only.
        this_run = status if wanted == status.run else TestEnvironmentStatus(run=wanted, tests=suites_of(index))
        _write_junit(junit, name, this_run, fetch.suite_reports(envs, index), None)
        out.print(f"JUnit report: {junit}", markup=False)
    if artifacts is not None:
        written = list(fetch.write_artifacts(envs, index, artifacts))
        out.print(f"{len(written)} files written under {artifacts}", markup=False)
    if show_logs:
        for tail, data in fetch.log_tails(envs, index):
            out.print(f"==== {tail.pod}/{tail.container}: {tail.reason}", markup=False)
            # Verbatim: a log line is never wrapped at the console's width.
            out.print(data.decode("utf-8", errors="replace") if data is not None else "(not kept)", markup=False,
                      highlight=False, soft_wrap=True)


# --- logs -------------------------------------------------------------------------------


SHARD_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@app.command()
@_handles_errors
def logs(
    *,
    namespace: Namespace = None,
    name: Annotated[str, typer.Argument(help="The TestEnvironment.")],
    suite: Annotated[str, typer.Argument(help="The test suite (spec.tests[].name).")],
    shard: Annotated[int | None, typer.Option("--shard", help="Only this shard (0-based) of a sharded suite.",
                                              show_default=False)] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
) -> None:
    """Print the logs of a suite's pods in the current run."""
    envs = Environments(connect(kubeconfig, context))
    ns = namespace or envs.connection.namespace
    obj = envs.require(namespace=ns, name=name)
    suites = [t.get("name") for t in (obj.get("spec") or {}).get("tests") or []]
    if suite not in suites:
        raise CliError(f"{ns}/{name} has no test suite {suite!r} (suites: {', '.join(suites) or 'none'})")
    state = read_status(obj)
    if not state.namespace or state.run < 1:
        raise CliError(f"{ns}/{name} has not started a run yet (phase {state.phase})")
    job = job_name(suite, state.run)
    pods = envs.job_pods(namespace=state.namespace, job=job)
    if shard is not None:
        pods = [p for p in pods if p.annotations.get(SHARD_ANNOTATION, "0") == str(shard)]
    if not pods:
        which = f" shard {shard}" if shard is not None else ""
        phase = next((t.phase for t in state.tests if t.name == suite), "unknown")
        raise CliError(f"no pods for suite {suite}{which} of run {state.run} (Job {job} in namespace "
                       f"{state.namespace}); the suite is {phase}")
    out, err = _console(), _console(stderr=True)
    shown = 0
    for pod in pods:
        index = pod.annotations.get(SHARD_ANNOTATION)
        if len(pods) > 1:
            label = f" (shard {index})" if index is not None else ""
            out.print(f"==> {pod.name}{label} <==", markup=False)
        try:
            text = envs.pod_log(namespace=state.namespace, pod=pod.name, container="tests")
        except CliError as exc:
            err.print(f"{pod.name}: {exc.message}", markup=False, soft_wrap=True)
            continue
        shown += 1
        out.print(text or "(no output)", markup=False, highlight=False, end="" if text.endswith("\n") else "\n",
                  soft_wrap=True)
    if not shown:
        raise CliError(f"no logs could be read for suite {suite} (see above): the pods may be gone, "
                       "or the node's kubelet does not serve logs")


# --- report ------------------------------------------------------------------------------


def _junit_files(patterns: list[str]) -> list[Path]:
    """Files, directories (every *.xml below) and glob patterns, for containers without a shell."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += sorted(path.rglob("*.xml"))
        elif path.exists() or not glob.has_magic(pattern):
            found.append(path)
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise CliError(f"{pattern}: no file matches")
            found += [Path(m) for m in matches]
    if not found:
        raise CliError(f"{', '.join(patterns)}: no JUnit XML files found")
    return found


@app.command()
@_handles_errors
def report(
    files: Annotated[list[str], typer.Argument(help="JUnit XML files, directories or glob patterns.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the JSON summary ('-': stdout).")]
    = "/dev/termination-log",
) -> None:
    """Summarise JUnit XML for the operator: run it at the end of a test container.

    Writes {"passed","failed","skipped","failures"} to the termination message
    (at most 4096 bytes). Exits 0 even when tests failed: the runner's exit
    code is the result. Exits 2 when the XML cannot be read.
    """
    documents = []
    for path in _junit_files(files):
        try:
            documents.append((str(path), path.read_bytes()))
        except OSError as exc:
            raise CliError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        summary = summarize(documents)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    message = termination_message(summary)
    if output == "-":
        sys.stdout.write(message + "\n")
    else:
        try:
            Path(output).write_text(message)
        except OSError as exc:
            raise CliError(f"cannot write the summary to {output}: {exc.strerror or exc}; "
                           "pass --output with a writable path (or - for stdout)") from None
    _console(stderr=True).print(
        f"testenv report: {display.counts(summary.passed, summary.failed, summary.skipped)} "
        f"from {len(documents)} file{'s' if len(documents) != 1 else ''} -> {output}", markup=False)


def main() -> None:
    app(prog_name="testenv")
