"""Fuzzed manifests: property-based TestEnvironments, valid and invalid, drawn
from the CRD's own schema (tests/manifest_strategies.py: hypothesis with
hypothesis-jsonschema, then repaired or given one fault at a known field).
For each, three verdicts: (a) the CLI's local validation (`testenv up`'s
prepare + check), (b) the pydantic models + validate.validate, (c) the API
server's admission (a dry-run create with fieldValidation=Strict, as kubectl
and the CLI apply). Then a sample of the admitted ones is applied for real
with the operator running. Invariants, each counted as violations (goal 0):

- the verdicts agree, per pair. At admission the API server checks what one
  object shows; the whole-spec checks (references, cycles) are the
  operator's, which admits the manifest and sets phase Error naming the
  field. So (c) is compared with (b)'s pydantic part and with (a) less its
  whole-spec problems, and the whole-spec verdict with the operator's Error;
  (b) does not look at metadata (the API server's ObjectMeta), so the
  metadata.name mutations are compared between (a) and (c) only;
- every rejection names a field: for a mutation, the field it broke (or a
  parent of it, at least `spec.<list>`); otherwise some `spec.`/`metadata.` path;
- no verdict is an exception instead of an answer;
- every applied manifest reaches a phase (status.phase) within --phase-timeout;
- 0 operator crashes (the process is alive, no traceback in its log) and
  0 hangs (an environment without a phase, or one that at the end of
  --settle is neither finished nor steady and has no reason on any
  component, seed or suite: KWOK ends pods at once, so nothing should hold it).

    python bench/fuzz_manifests.py --seed 20261130 --count 1000 --apply 150
"""

from __future__ import annotations

import argparse
import atexit
import json
import re
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

from harness import (  # noqa: E402
    COPY_SOURCE_NAMESPACE,
    GROUP,
    PLURAL,
    VERSION,
    ensure_namespace,
    force_clean,
    log,
    machine,
    parser,
    session,
)
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from kubernetes import client  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from manifest_strategies import MUTATIONS, Case, cases  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from testenv import models  # noqa: E402
from testenv.cli.manifest import ManifestError, check, prepare  # noqa: E402
from testenv.validate import validate  # noqa: E402

DRY_NAMESPACE = "fuzz-manifests"
RUN_NAMESPACE = "fuzz-run"
FINAL = {"Succeeded", "Failed", "TimedOut", "Error"}
STEADY = FINAL | {"Ready", "Queued"}
# Share of --count per family; the mutations split theirs evenly.
SHARES = {"schema": 0.15, "repaired": 0.25, "mutated": 0.60}


@dataclass
class Verdict:
    accepted: bool
    messages: list[str] = field(default_factory=list)
    crashed: str | None = None  # an exception instead of a verdict
    whole_spec: bool = False  # rejected only by validate.validate (the operator's whole-spec checks)


@dataclass
class Result:
    index: int
    case: Case
    cli: Verdict
    models: Verdict
    server: Verdict | None = None
    applied_as: str | None = None
    phase_after: float | None = None  # seconds from apply to the first phase
    final_status: dict[str, Any] | None = None


# --- the manifests ----------------------------------------------------------------------


def draw(family: str, seed: int, examples: int) -> list[Case]:
    """What hypothesis draws for one family in `examples` tries, deterministic for the seed."""
    drawn: list[Case] = []

    @hypothesis_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(cases(family, namespace=DRY_NAMESPACE))
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def generate(seed: int, count: int) -> list[Case]:
    """`count` distinct manifests, deterministic for a seed: each family drawn
    with a seed of its own, duplicates dropped, rounds repeated until full."""
    quotas = {"schema": round(count * SHARES["schema"]), "repaired": round(count * SHARES["repaired"])}
    rest = count - sum(quotas.values())
    for i, kind in enumerate(MUTATIONS):
        quotas[f"mutated:{kind}"] = rest // len(MUTATIONS) + (1 if i < rest % len(MUTATIONS) else 0)
    out: list[Case] = []
    seen: set[str] = set()
    for f_index, (family, quota) in enumerate(quotas.items()):
        got: list[Case] = []
        for round_ in range(8):
            for case in draw(family, seed * 1000 + f_index * 10 + round_, max(quota - len(got), 1) * 2):
                key = json.dumps(case.body, sort_keys=True, default=str)
                if key not in seen and len(got) < quota:
                    seen.add(key)
                    got.append(case)
            if len(got) >= quota:
                break
        out += got
    return out


# --- the verdicts -----------------------------------------------------------------------------


def cli_verdict(body: dict[str, Any]) -> Verdict:
    """What `testenv up -f` does before it sends anything."""
    try:
        prepared = prepare(body)
        check({**prepared, "metadata": {**prepared["metadata"],
                                        "namespace": prepared["metadata"].get("namespace") or "default"}})
    except ManifestError as exc:
        return Verdict(False, exc.problems)
    except Exception as exc:  # noqa: BLE001 - an exception instead of a verdict is what we count
        return Verdict(False, [], crashed=f"{type(exc).__name__}: {exc}")
    return Verdict(True)


def models_verdict(body: dict[str, Any]) -> Verdict:
    """The pydantic models, then the whole-spec checks (copy policy: any source)."""
    try:
        environment = models.TestEnvironment.model_validate(body)
    except ValidationError as exc:
        return Verdict(False, [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()])
    except Exception as exc:  # noqa: BLE001
        return Verdict(False, [], crashed=f"{type(exc).__name__}: {exc}")
    try:
        allow_any = frozenset(s.copy_from.namespace for s in environment.spec.services if s.copy_from)
        errors = validate(environment.spec, allow_any)
    except Exception as exc:  # noqa: BLE001
        return Verdict(False, [], crashed=f"{type(exc).__name__}: {exc}")
    if errors:
        return Verdict(False, [str(e) for e in errors], whole_spec=True)
    return Verdict(True)


def cli_admission(result: Result) -> bool:
    """The CLI's verdict less the whole-spec checks, which the API server leaves to the operator."""
    if result.cli.accepted or result.cli.crashed:
        return result.cli.accepted
    if result.models.whole_spec:
        whole = set(result.models.messages)
        return all(m in whole for m in result.cli.messages)
    return False


def server_verdict(custom: client.CustomObjectsApi, body: dict[str, Any]) -> Verdict:
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, DRY_NAMESPACE, PLURAL, body, dry_run="All",
                                               field_validation="Strict")
    except ApiException as exc:
        if exc.status in (400, 422):
            try:
                status = json.loads(exc.body)
            except (TypeError, ValueError):
                status = {"message": str(exc.body)}
            causes = (status.get("details") or {}).get("causes") or []
            return Verdict(False, [status.get("message", "")] + [f"{c.get('field', '')}: {c.get('message', '')}"
                                                                 for c in causes])
        return Verdict(False, [], crashed=f"HTTP {exc.status}: {exc.reason}: {str(exc.body)[:300]}")
    except ValueError as exc:  # the client refusing the body (e.g. a name it cannot put in a URL)
        return Verdict(False, [], crashed=f"client: {exc}")
    return Verdict(True)


# --- does a rejection name the field? ---------------------------------------------------------------


def _normalise(text: str) -> str:
    # The CLI writes list items as [0](name); pydantic's unions add .int/.str.
    return re.sub(r"\]\([^)]*\)", "]", text)


def prefixes(path: str) -> list[str]:
    """spec.tests[0].image -> [spec.tests[0].image, spec.tests[0], spec.tests] (not bare spec)."""
    out = [path]
    while True:
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
        if "." not in path and "[" not in path:
            break
        out.append(path)
    return out


def names_field(verdict: Verdict, case: Case, *, mutation_was_a_fault: bool = True) -> bool:
    """The refusal names the field the mutation broke; or, for a manifest
    with no mutation or one that broke nothing, some field."""
    text = _normalise("\n".join(verdict.messages))
    if case.path is None or not mutation_was_a_fault:
        return bool(re.search(r"\b(spec|metadata)[.\[:]", text))
    if case.path in ("dependsOn", "needs"):  # a cycle: validate names the graph
        return case.path in text
    return any(p in text for p in prefixes(case.path))


# --- applied for real ---------------------------------------------------------------------------


def run_name(result: Result) -> str:
    name = f"f{result.index:04d}"
    original = (result.case.body.get("metadata") or {}).get("name")
    if result.case.mutation == "bad_metadata_name" and isinstance(original, str):
        name = f"{name}-{original}"[:253].rstrip(".-")
    return name


def choose_sample(results: list[Result], size: int) -> list[Result]:
    """Admitted manifests the whole-spec checks refuse (up to half the
    sample), every admitted unusual metadata.name (dots, 253 characters),
    then admitted valid ones spread over the families."""
    admitted = [r for r in results if r.server and r.server.accepted]
    whole = [r for r in admitted if r.models.whole_spec][: size // 2]
    whole += [r for r in admitted if r.case.mutation == "bad_metadata_name" and r not in whole]
    rest = [r for r in admitted if r not in whole]
    step = max(len(rest) / max(size - len(whole), 1), 1)
    picked = [rest[int(i * step)] for i in range(min(size - len(whole), len(rest)))]
    return whole + picked


def operator_failures(log_text: str) -> tuple[int, dict[str, set[str]]]:
    """Tracebacks in the operator's log: how many, and by cause (the deepest
    frame of ours, the exception, the API server's message, numbers and
    names blanked) the environments they hit."""
    lines = log_text.splitlines()
    count, causes = 0, {}
    for i, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        count += 1
        j = i - 1
        while j >= 0 and not line_is_log(lines[j]):
            j -= 1
        env = re.search(r"\[([\w-]+/[\w.-]+)\]", lines[j]) if j >= 0 else None
        k = i + 1
        while k < len(lines) and not line_is_log(lines[k]):
            k += 1
        block = lines[i:k]
        ours = [b.strip() for b in block if 'File "' in b and "/operator/testenv/" in b]
        errors = [b.strip() for b in block if re.match(r"^[A-Za-z_.]+(Error|Exception)\b", b)]
        body = next((b for b in block if "HTTP response body" in b), "")
        try:
            message = str(json.loads(body.split("HTTP response body: ", 1)[1]).get("message", ""))[:160]
        except (IndexError, ValueError, AttributeError):
            message = ""
        message = re.sub(r"\d+", "N", re.sub(r'"[^"]*"', '"…"', message))[:100]
        cause = " | ".join(x for x in ((ours[-1] if ours else ""), (errors[-1][:100] if errors else ""), message) if x)
        causes.setdefault(cause, set()).add(env.group(1) if env else "?")
    return count, causes


def line_is_log(line: str) -> bool:
    return bool(re.match(r"^\[\d{4}-\d\d-\d\d ", line))


def waits_silently(status: dict[str, Any]) -> bool:
    """Held: not finished, not steady, and no component, seed or suite carries
    a reason (KWOK ends every pod at once, so a run without one has no cause
    to wait after --settle; one with a reason waits for its failure grace)."""
    if status.get("phase") in STEADY:
        return False
    return not any(x.get("reason") for key in ("components", "seeds", "tests") for x in status.get(key) or [])


def operator_refusals(body: dict[str, Any]) -> list[str]:
    """The fields the operator's whole-spec checks name, with its policy here (copies from
    the bench's staging namespace only, no Secrets to borrow); [] when there are none."""
    environment = models.TestEnvironment.model_validate(body)
    return [e.field for e in validate(environment.spec, frozenset({COPY_SOURCE_NAMESPACE}), {})]


def names_all(status: dict[str, Any], fields: list[str]) -> bool:
    text = _normalise(status.get("message") or "")
    return all(f in text for f in fields)


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], repeats=1)
    for action in p._actions:
        if "--repeats" in action.option_strings:
            action.help = argparse.SUPPRESS
    p.set_defaults(testbed_state="/tmp/bench-fuzz", testbed_name="fuzz")
    p.add_argument("--seed", type=int, default=20261130, help="hypothesis seed (the manifests are a function of it)")
    p.add_argument("--count", type=int, default=1000, help="manifests to generate and judge")
    p.add_argument("--apply", type=int, default=150, help="admitted manifests applied for real with the operator")
    p.add_argument("--phase-timeout", type=float, default=60, help="seconds an applied manifest may go without a phase")
    p.add_argument("--settle", type=float, default=120, help="seconds to watch the applied ones after the last apply")
    p.add_argument("--workers", type=int, default=4, help="client threads for the dry runs")
    p.add_argument("--no-operator", action="store_true", help="verdicts only; apply nothing")
    args = p.parse_args()
    if not args.json:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        args.json = str(HERE / "results" / day / f"fuzz_manifests-seed{args.seed}-n{args.count}.json")

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    started = time.monotonic()
    cases_ = generate(args.seed, args.count)
    log(f"generated {len(cases_)} manifests in {time.monotonic() - started:.1f}s")
    results = []
    for i, case in enumerate(cases_):
        results.append(Result(i, case, cli_verdict(case.body), models_verdict(case.body)))

    operator = None
    log_text = ""
    operator_alive = None
    with session(args) as sess:
        try:
            custom = client.CustomObjectsApi(sess.api)
            ensure_namespace(sess.core, DRY_NAMESPACE)
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.workers) as pool:
                verdicts = list(pool.map(lambda r: server_verdict(custom, r.case.body), results))
            for r, v in zip(results, verdicts, strict=True):
                r.server = v
            log(f"{len(results)} dry runs in {time.monotonic() - t0:.1f}s")

            if not args.no_operator:
                operator = sess.operator(TESTENV_FAILURE_GRACE_SECONDS="20")
                atexit.register(operator.stop)
                operator.start()
                sample = choose_sample(results, args.apply)
                envs = sess.environments(RUN_NAMESPACE)
                applied_at: dict[str, float] = {}
                for r in sample:
                    r.applied_as = run_name(r)
                    body = json.loads(json.dumps(r.case.body))
                    body["metadata"] = {"name": r.applied_as, "namespace": RUN_NAMESPACE}
                    try:
                        custom.create_namespaced_custom_object(GROUP, VERSION, RUN_NAMESPACE, PLURAL, body,
                                                               field_validation="Strict")
                        applied_at[r.applied_as] = time.time()
                    except ApiException as exc:
                        r.final_status = {"applyError": f"{exc.status}: {str(exc.body)[:300]}"}
                log(f"applied {len(applied_at)} environments; waiting for phases")
                deadline = time.monotonic() + args.phase_timeout
                while time.monotonic() < deadline and not all(
                        envs.phase_times.get(n) for n in applied_at):
                    time.sleep(0.5)
                settle_end = time.monotonic() + args.settle
                while time.monotonic() < settle_end:
                    statuses = [(envs.get(n) or {}).get("status") or {} for n in applied_at]
                    if all(s.get("phase") in STEADY for s in statuses):
                        break
                    time.sleep(1)
                for r in sample:
                    if r.applied_as in applied_at:
                        times = envs.phase_times.get(r.applied_as) or {}
                        first = min(times.values()) if times else None
                        r.phase_after = first - applied_at[r.applied_as] if first else None
                        r.final_status = (envs.get(r.applied_as) or {}).get("status") or {}
                envs.stop()
                operator_alive = operator.alive()
                operator.stop()
                log_text = operator.logs()
                if args.keep_testbed:
                    force_clean(sess.api)
        finally:
            if operator is not None:
                operator.stop()
    summarise(args, results, operator_alive, log_text, time.monotonic() - started)


def summarise(args: argparse.Namespace, results: list[Result], operator_alive: bool | None, log_text: str,
              elapsed: float) -> None:
    no_meta = [r for r in results if r.case.mutation != "bad_metadata_name"]
    judged = [r for r in results if r.server is not None]
    pairs = {
        "CLI vs models+validate": [r for r in no_meta if r.cli.accepted != r.models.accepted],
        "models (pydantic) vs API server admission": [
            r for r in no_meta if r.server and (r.models.accepted or r.models.whole_spec) != r.server.accepted],
        "CLI vs API server admission": [r for r in judged if cli_admission(r) != r.server.accepted],
    }
    crashed = [r for r in results if r.cli.crashed or r.models.crashed or (r.server and r.server.crashed)]
    unnamed: list[tuple[Result, str]] = []
    for r in results:
        # A null where the API server takes null as unset (an optional list,
        # say) breaks nothing: a refusal is then of the rest of the drawn
        # manifest (a dependsOn naming nothing), and names that field.
        fault = not (r.case.mutation == "null_value" and r.server is not None and r.server.accepted)
        for who, verdict in (("cli", r.cli), ("models", r.models), ("server", r.server)):
            if (verdict is not None and not verdict.accepted and not verdict.crashed
                    and not names_field(verdict, r.case, mutation_was_a_fault=fault)):
                if who == "models" and r.case.mutation == "bad_metadata_name":
                    continue
                unnamed.append((r, who))
    applied = [r for r in results if r.applied_as]
    reached = [r for r in applied if r.phase_after is not None and r.phase_after <= args.phase_timeout]
    no_phase = [r for r in applied if r not in reached]
    silent = [r for r in applied if r.final_status and waits_silently(r.final_status) and r in reached]
    whole_applied = [r for r in applied if r.models.whole_spec]
    refusals = {r.index: operator_refusals(r.case.body) for r in applied}
    refused = [r for r in applied if refusals[r.index]]
    whole_mismatch = [r for r in refused if (r.final_status or {}).get("phase") != "Error"
                      or not names_all(r.final_status or {}, refusals[r.index])]
    valid_error = [r for r in applied if not refusals[r.index] and (r.final_status or {}).get("phase") == "Error"]
    tracebacks, causes = operator_failures(log_text) if applied else (0, {})
    families = Counter(r.case.family.split(":")[0] for r in results)
    verdict_counts = {
        "cli rejects": sum(not r.cli.accepted for r in results),
        "models reject": sum(not r.models.accepted for r in results),
        "  of which whole-spec only": sum(r.models.whole_spec for r in results),
        "server rejects": sum(bool(r.server and not r.server.accepted) for r in results),
    }
    phases = Counter((r.final_status or {}).get("phase", "none") for r in applied)

    rows = [
        ("manifests tried", len(results),
         f"schema {families['schema']}, repaired {families['repaired']}, mutated {families['mutated']}"),
        *((f"disagreements: {name}", len(rs), "") for name, rs in pairs.items()),
        ("verdicts that were exceptions", len(crashed), ""),
        ("rejections that name no field", len(unnamed), "per verdict"),
        ("applied for real (admitted)", len(applied),
         f"{len(whole_applied)} refused by the whole-spec checks; {len(refused)} with the operator's copy policy"),
        ("  reached a phase within the bound", len(reached), f"bound {args.phase_timeout:.0f}s"),
        ("  whole-spec refusal not the operator's Error naming the fields", len(whole_mismatch), ""),
        ("  valid (also by the operator's policy), yet Error on the operator", len(valid_error), "reported, see below"),
        ("operator crashes (process died)", 0 if operator_alive in (None, True) else 1, ""),
        ("operator crashes (tracebacks in its log)", tracebacks,
         f"{len(causes)} causes, {len({e for es in causes.values() for e in es})} environments"),
        ("hangs (no phase; or held after --settle with no reason)", len(no_phase) + len(silent), ""),
    ]
    info = machine()
    print()
    print("== Fuzzed manifests: CLI, models and API server verdicts; admitted ones on the operator ==")
    print(f"{info['date']}; {info['nproc']} x {info['cpu']}; load average at the end "
          f"{', '.join(f'{x:.2f}' for x in info['load_average'])}; {elapsed:.0f}s in all")
    print(f"operator at commit {info['operator_commit']}; seed {args.seed}, count {args.count}")
    for name, value, note in rows:
        print(f"{name:<64} {value:>6}  {note}")
    print("verdicts: " + ", ".join(f"{k.strip()} {v}" for k, v in verdict_counts.items()))
    if applied:
        print("final phases of the applied: " + ", ".join(f"{k} {v}" for k, v in phases.most_common()))
        times = sorted(r.phase_after for r in reached)
        if times:
            print(f"apply -> first phase: median {times[len(times) // 2]:.1f}s, max {times[-1]:.1f}s")
        waiting = [r for r in reached if (r.final_status or {}).get("phase") not in STEADY and r not in silent]
        print(f"not finished at the end of --settle, each saying what it waits for: {len(waiting)} (by cause: "
              + "; ".join(f"{k} {v}" for k, v in Counter(
                  _error_kind(r.final_status or {}) for r in waiting).most_common()) + ")")
        print(f"valid (also by the operator's policy) but Error on the operator: {len(valid_error)} (by cause: "
              + "; ".join(f"{k} {v}" for k, v in Counter(
                  _error_kind(r.final_status or {}) for r in valid_error).most_common()) + ")")

    def example(r: Result) -> dict[str, Any]:
        return {"index": r.index, "family": r.case.family, "path": r.case.path, "note": r.case.note,
                "body": r.case.body, "cli": asdict(r.cli), "models": asdict(r.models),
                "server": asdict(r.server) if r.server else None, "applied_as": r.applied_as,
                "phase_after": r.phase_after, "final_status": r.final_status}

    violations = {
        **{name: [example(r) for r in rs] for name, rs in pairs.items()},
        "exceptions": [example(r) for r in crashed],
        "unnamed": [{"by": who, **example(r)} for r, who in unnamed],
        "no_phase": [example(r) for r in no_phase],
        "waits_silently": [example(r) for r in silent],
        "whole_spec_mismatch": [example(r) for r in whole_mismatch],
        "operator_failures": [f"{len(envs)} environments: {cause} (e.g. {sorted(envs)[:3]})"
                              for cause, envs in sorted(causes.items(), key=lambda kv: -len(kv[1]))],
    }
    for name, items in violations.items():
        for item in items[:3]:
            if isinstance(item, dict):
                print(f"  [{name}] #{item['index']} {item['family']} {item['path']} {item['note']!r}: "
                      f"cli={_short(item['cli'])} models={_short(item['models'])} server={_short(item['server'])}")
            else:
                print(f"  [{name}] {item}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({
        "title": "fuzzed manifests", "machine": info, "seed": args.seed, "count": args.count,
        "figures": {name: value for name, value, _ in rows}, "verdicts": verdict_counts,
        "families": dict(Counter(r.case.family for r in results)), "final_phases": dict(phases),
        "valid_but_error": [example(r) for r in valid_error],
        "applied": [{"index": r.index, "family": r.case.family, "as": r.applied_as, "phase_after": r.phase_after,
                     "phase": (r.final_status or {}).get("phase"), "message": (r.final_status or {}).get("message"),
                     "refusals": refusals[r.index], "reasons": _reasons(r.final_status or {})} for r in applied],
        "violations": violations,
    }, indent=1, default=str))
    log(f"wrote {args.json}")


def _reasons(status: dict[str, Any]) -> list[str]:
    return [f"{key} {x.get('name')}: {x.get('reason')}: {(x.get('message') or '')[:200]}"
            for key in ("components", "seeds", "tests") for x in status.get(key) or [] if x.get("reason")]


def _error_kind(status: dict[str, Any]) -> str:
    text = json.dumps(status)
    if "invalid Unicode character escape" in text:
        return "ApplyRejected: a character beyond the BMP (client's JSON escapes, API server's YAML reader)"
    for key in ("copyFrom", "secretKeyRef", "ApplyRejected", "QuotaExceeded", "LimitRangeRejected",
                "PodSecurityRejected", "FailedCreate", "InvalidImageName"):
        if key in text:
            return key
    return (status.get("message") or "")[:80]


def _short(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "-"
    if verdict["crashed"]:
        return f"EXCEPTION({verdict['crashed'][:120]})"
    if verdict["accepted"]:
        return "ok"
    return "no(" + " | ".join(m[:140] for m in verdict["messages"][:2]) + ")"


if __name__ == "__main__":
    main()
