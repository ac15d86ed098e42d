"""TestEnvironment manifests for property-based tests, drawn from the CRD's own
schema (crds/testenvironment.yaml) with hypothesis-jsonschema, valid and not.

Three families:
- `schema`: whatever the CRD's OpenAPI schema allows, structurally; its CEL
  rules, list-map keys and references between items are not honoured, so
  many are still refused somewhere (which is the point: by whom, and why).
- `repaired`: the same, then made whole: unique names, references to items
  that exist and come earlier (no cycles), the CEL rules kept.
- `mutated:<kind>`: a repaired manifest with one fault put in, at a known
  field path (`Case.path`): a wrong type, a null, an unknown field, a number
  or a list out of range, a bad name, a missing required field, a cycle, a
  duplicate name, a reference to nothing, a CEL rule broken, a bad pattern or
  enum value, a bad metadata.name.

Pure: no cluster, no files but the CRD. Used by tests/unit/test_manifest_properties.py
and bench/fuzz_manifests.py.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import ValidationError
from testenv import models
from testenv.models import ANNOTATION_KEY_PATTERN, UNNAMED_PORT_NAME_PATTERN

CRD_PATH = Path(__file__).resolve().parents[1] / "crds" / "testenvironment.yaml"
API_VERSION = "testenv.dev/v1alpha1"
ANNOTATION_KEY = re.compile(ANNOTATION_KEY_PATTERN.removeprefix("^").removesuffix("$"))
COMPONENT_LISTS = ("datastores", "stubs", "services")
JOB_LISTS = ("seed", "tests")
MUTATIONS = (
    "wrong_type", "null_value", "unknown_field", "out_of_range", "bad_name", "bad_metadata_name",
    "missing_required", "cycle", "duplicate_name", "unknown_reference", "cel_rule", "bad_pattern", "bad_enum",
)
# Generation only: keeps drawn manifests small. The real limits stay in the
# schema the mutations read (`out_of_range` goes past them).
GEN_MAX_ITEMS_TOP, GEN_MAX_ITEMS_NESTED, GEN_MAX_STRING = 3, 2, 16


@dataclass
class Case:
    family: str  # schema | repaired | mutated:<kind>
    body: dict[str, Any]
    path: str | None = None  # the field a mutation broke, e.g. spec.tests[0].image
    note: str = ""  # what the mutation did

    @property
    def mutation(self) -> str | None:
        return self.family.split(":", 1)[1] if self.family.startswith("mutated:") else None


# --- the schema ----------------------------------------------------------------------


@cache
def crd_spec_schema() -> dict[str, Any]:
    """The CRD's OpenAPI schema of `spec`, as the API server validates it."""
    crd = yaml.safe_load(CRD_PATH.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def _free_form(node: dict[str, Any]) -> bool:
    return bool(node.get("x-kubernetes-preserve-unknown-fields")) and "properties" not in node


def _leaf(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: node[k] for k in ("type", "enum", "minimum", "maximum", "minLength", "maxLength", "pattern")
           if k in node}
    if out.get("type") == "string" and "pattern" not in out and "enum" not in out:
        out["maxLength"] = min(node.get("maxLength", GEN_MAX_STRING), GEN_MAX_STRING)
    return out


_SCALARS = st.one_of(st.text(max_size=8), st.integers(-5, 5000), st.booleans())
# Map keys: mostly tame, sometimes anything (a pod annotation's key is
# checked by nothing before the Job carrying it is applied).
_KEYS = st.one_of(st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=8),
                  st.text(min_size=1, max_size=8))


def strategy_for(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values the OpenAPI node allows, structurally. Objects and lists are
    built here (hypothesis-jsonschema 0.23's object strategy uses a Hypothesis
    internal that newer releases removed); every scalar comes from
    hypothesis-jsonschema's `from_schema` of the node itself. Free-form parts
    and lists are kept small."""
    if node.get("x-kubernetes-int-or-string"):
        text = {"type": "string", "pattern": node["pattern"]} | (
            {"maxLength": node["maxLength"]} if "maxLength" in node else {})
        return st.one_of(st.integers(node.get("minimum", 0), min(node.get("maximum", 4096), 4096)), from_schema(text))
    if _free_form(node):
        small_map = st.dictionaries(_KEYS, _SCALARS, max_size=2)
        return small_map if node.get("type") == "object" else st.one_of(_SCALARS, small_map)
    kind = node.get("type")
    if kind == "object" and "properties" in node:
        required = set(node.get("required", ()))
        props = {k: strategy_for(v, depth + 1) for k, v in node["properties"].items()}
        return st.fixed_dictionaries({k: s for k, s in props.items() if k in required},
                                     optional={k: s for k, s in props.items() if k not in required})
    if kind == "object":
        values = strategy_for(node["additionalProperties"], depth + 1) \
            if isinstance(node.get("additionalProperties"), dict) else _SCALARS
        return st.dictionaries(_KEYS, values, max_size=2)
    if kind == "array":
        cap = GEN_MAX_ITEMS_TOP if depth <= 1 else GEN_MAX_ITEMS_NESTED
        return st.lists(strategy_for(node["items"], depth + 1), min_size=node.get("minItems", 0),
                        max_size=max(min(node.get("maxItems", cap), cap), node.get("minItems", 0)))
    return from_schema(_leaf(node))


# --- walking a manifest along the schema -------------------------------------------------


Loc = tuple[Any, ...]  # ('spec', 'tests', 0, 'image')


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Site:
    loc: Loc
    schema: dict[str, Any]
    parent: Any  # the dict or list holding the value
    key: Any  # its key or index there


def sites(spec: dict[str, Any], schema: dict[str, Any] | None = None) -> Iterator[Site]:
    """Every schema'd value in the spec (not inside free-form parts), with its schema."""
    schema = schema or crd_spec_schema()

    def walk(value: Any, node: dict[str, Any], loc: Loc) -> Iterator[Site]:
        if _free_form(node):
            return
        if isinstance(value, dict) and "properties" in node:
            for key, child in value.items():
                if key in node["properties"]:
                    yield Site(loc + (key,), node["properties"][key], value, key)
                    yield from walk(child, node["properties"][key], loc + (key,))
        elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
            for key in value:
                yield Site(loc + (key,), node["additionalProperties"], value, key)
        elif isinstance(value, list) and "items" in node:
            for i, child in enumerate(value):
                yield Site(loc + (i,), node["items"], value, i)
                yield from walk(child, node["items"], loc + (i,))

    yield from walk(spec, schema, ("spec",))


# --- making a drawn spec whole ---------------------------------------------------------


def repair(spec: dict[str, Any]) -> dict[str, Any]:
    """A drawn spec made valid beyond its structure: what the CEL rules, the
    list-map keys and the whole-spec checks (validate.py) ask for."""
    spec = copy.deepcopy(spec)
    for site in list(sites(spec)):
        value = site.parent[site.key]
        if site.schema.get("type") == "integer" and isinstance(value, int) and abs(value) >= 2**31:
            site.parent[site.key] = value % 100_000 + site.schema.get("minimum", 0)  # int64 is the schema's too
    quota = (spec.get("isolation") or {}).get("resourceQuota") or {}
    if isinstance(quota.get("pods"), str):  # the CEL rule (what a ResourceQuota can hold) the strategy cannot see
        try:
            models.ResourceQuota.model_validate({"pods": quota["pods"]})
        except ValidationError:
            quota["pods"] = "30"
    seen: set[str] = set()
    for field in COMPONENT_LISTS:
        kept = []
        for item in spec.get(field) or []:
            if item["name"] not in seen:
                seen.add(item["name"])
                kept.append(item)
        if field in spec:
            spec[field] = kept
    jobs: set[str] = set()
    for field in JOB_LISTS:
        kept = []
        for item in spec.get(field) or []:
            if item["name"] not in jobs:
                jobs.add(item["name"])
                kept.append(item)
        if field in spec:
            spec[field] = kept
    # References only to items that come earlier: no dangling names, no cycles.
    earlier: list[str] = []
    for field in COMPONENT_LISTS:
        for item in spec.get(field) or []:
            if "dependsOn" in item:
                item["dependsOn"] = list(dict.fromkeys(d for d in item["dependsOn"] if d in earlier))
            earlier.append(item["name"])
    # A seed with a datastore that depends on something makes every service
    # waiting for the seed wait for that too; keep the start graph acyclic by
    # seeding only datastores that depend on nothing.
    seedable = [d["name"] for d in spec.get("datastores") or [] if not d.get("dependsOn")]
    for field in JOB_LISTS:
        done: list[str] = []
        for item in spec.get(field) or []:
            if "needs" in item:
                item["needs"] = list(dict.fromkeys(n for n in item["needs"] if n in done))
            done.append(item["name"])
    for item in spec.get("seed") or []:
        if "datastore" in item and item["datastore"] not in seedable:
            if seedable:
                item["datastore"] = seedable[0]
            else:
                del item["datastore"]
        if "sql" in item and "image" in item:
            del item["image"]
        if "sql" in item and "datastore" not in item:
            del item["sql"]
        if "sql" not in item and "image" not in item:
            item["image"] = "registry.test/seed:1"
    # A seed without datastore waits for every datastore and gates every
    # component that depends on one: fine while no datastore depends on a
    # component; drop such seeds otherwise (the start graph stays acyclic).
    if any(d.get("dependsOn") for d in spec.get("datastores") or []):
        spec["seed"] = [s for s in spec.get("seed") or [] if "datastore" in s]
    for item in spec.get("services") or []:
        if "image" not in item and "copyFrom" not in item:
            item["image"] = "registry.test/service:1"
        if isinstance(probe := item.get("readinessProbe"), dict):  # the CEL rule: exactly one handler
            handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in probe]
            for extra in handlers[1:]:
                del probe[extra]
            if not handlers:
                probe["exec"] = {"command": ["true"]}
    for field in ("services", "seed", "tests"):
        for item in spec.get(field) or []:
            for var in item.get("env") or []:
                if "valueFrom" in var and var.get("value"):
                    del var["value"]
            if "env" in item:  # a list keyed by name, as a container's
                item["env"] = list({var["name"]: var for var in reversed(item["env"])}.values())[::-1]
            if "podAnnotations" in item:  # the CEL rule the schema's strategy cannot see
                item["podAnnotations"] = {k: v for k, v in item["podAnnotations"].items()
                                          if ANNOTATION_KEY.fullmatch(k) and k.find("/") <= 253}
    for item in spec.get("services") or []:
        if "ports" in item:  # each number and each name once, no p<number> names
            ports, numbers, names = [], set(), set()
            for port in item["ports"]:
                if "name" in port and re.fullmatch(UNNAMED_PORT_NAME_PATTERN, port["name"]):
                    del port["name"]
                name = port.get("name", f"p{port['port']}")
                if port["port"] not in numbers and name not in names:
                    ports.append(port)
                    numbers.add(port["port"])
                    names.add(name)
            item["ports"] = ports
    return spec


# --- strategies --------------------------------------------------------------------------


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@cache
def spec_strategy() -> st.SearchStrategy[dict[str, Any]]:
    return strategy_for(crd_spec_schema())


def metadata_names() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)


def body(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "TestEnvironment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


@st.composite
def cases(draw: st.DrawFn, family: str | None = None, namespace: str = "fuzz") -> Case:
    """One manifest of `family` (schema, repaired, or mutated:<kind>; drawn when None)."""
    if family is None:
        family = draw(st.sampled_from(("schema", "repaired", *(f"mutated:{k}" for k in MUTATIONS))))
    spec = draw(spec_strategy())
    name = draw(metadata_names())
    if family == "schema":
        return Case("schema", body(name, namespace, spec))
    spec = repair(spec)
    if family == "repaired":
        return Case("repaired", body(name, namespace, spec))
    kind = family.removeprefix("mutated:")
    case = Case(family, body(name, namespace, spec))
    MUTATORS[kind](draw, case)
    return case


# --- mutations: each puts one fault in case.body and says where -----------------------------


def _spec(case: Case) -> dict[str, Any]:
    spec: dict[str, Any] = case.body["spec"]
    return spec


def _ensure(spec: dict[str, Any], field: str, count: int) -> list[dict[str, Any]]:
    """At least `count` items in spec[field], adding valid ones as needed."""
    items = spec.setdefault(field, [])
    taken = {i["name"] for f in (*COMPONENT_LISTS, *JOB_LISTS) for i in spec.get(f) or []}
    n = 0
    while len(items) < count:
        name = f"{field[:2]}{n}"
        n += 1
        if name in taken:
            continue
        taken.add(name)
        item: dict[str, Any] = {"name": name}
        if field == "datastores":
            item["engine"] = "redis"
        elif field in ("services", "seed", "tests"):
            item["image"] = f"registry.test/{field}:1"
        items.append(item)
    return items


def _pick_site(draw: st.DrawFn, case: Case, want: Any) -> Site | None:
    candidates = [s for s in sites(_spec(case)) if want(s)]
    return draw(st.sampled_from(candidates)) if candidates else None


def _set(case: Case, site: Site, value: Any, note: str) -> None:
    site.parent[site.key] = value
    case.path, case.note = format_path(site.loc), note


def _fallback(draw: st.DrawFn, case: Case) -> None:
    """A mutation with nowhere to go in this spec: break a test suite's shards instead."""
    suite = _ensure(_spec(case), "tests", 1)[0]
    suite["shards"] = draw(st.sampled_from([0, 101, "2", True]))
    case.path = "spec.tests[0].shards"
    case.note = f"shards={suite['shards']!r} (fallback)"


def wrong_type(draw: st.DrawFn, case: Case) -> None:
    site = _pick_site(draw, case, lambda s: "type" in s.schema or s.schema.get("x-kubernetes-int-or-string"))
    if site is None:
        return _fallback(draw, case)
    if site.schema.get("x-kubernetes-int-or-string"):
        options: list[Any] = [True, 1.5, [], {}, 2.0]
    else:
        options = {
            "integer": ["7", True, False, 1.5, 2.0, "x", [], {}],
            "string": [7, True, 1.5, [], {}],
            "boolean": ["true", "false", 1, 0, "yes", []],
            "object": ["x", 1, [], True],
            "array": ["x", 1, {}, True],
        }[site.schema["type"]]
    value = draw(st.sampled_from(options))
    _set(case, site, value, f"{type(value).__name__} {value!r} where {site.schema.get('type', 'int-or-string')}")
    return None


def null_value(draw: st.DrawFn, case: Case) -> None:
    site = _pick_site(draw, case, lambda s: isinstance(s.parent, dict))
    if site is None:
        return _fallback(draw, case)
    _set(case, site, None, "null")
    return None


UNKNOWN_KEYS = ("imagePullPolicy", "replica", "dependson", "Name", "depends_on", "timeout", "x")


def unknown_field(draw: st.DrawFn, case: Case) -> None:
    spec = _spec(case)
    objects = [s for s in sites(spec) if s.schema.get("type") == "object" and "properties" in s.schema
               and isinstance(s.parent[s.key], dict)]
    key = draw(st.sampled_from(UNKNOWN_KEYS))
    if not objects or draw(st.integers(0, 4)) == 0:
        spec[key] = "x"
        case.path, case.note = f"spec.{key}", "unknown field at spec"
        return
    site = draw(st.sampled_from(objects))
    if key in site.schema["properties"]:
        key = key + "Typo"
    site.parent[site.key][key] = "x"
    case.path = format_path(site.loc + (key,))
    case.note = "unknown field" + (" (in an object that keeps unknown fields)"
                                   if site.schema.get("x-kubernetes-preserve-unknown-fields") else "")


def out_of_range(draw: st.DrawFn, case: Case) -> None:
    spec = _spec(case)
    choice = draw(st.sampled_from(("number", "number", "huge", "list", "string")))
    if choice == "list":
        field = draw(st.sampled_from((*COMPONENT_LISTS, *JOB_LISTS)))
        limit = crd_spec_schema()["properties"][field]["maxItems"]
        items = spec.setdefault(field, [])
        taken = {i["name"] for f in (*COMPONENT_LISTS, *JOB_LISTS) for i in spec.get(f) or []}
        n = 0
        while len(items) <= limit:
            name = f"x{n}"
            n += 1
            if name not in taken:
                items.append({"name": name, "engine": "redis"} if field == "datastores" else
                             {"name": name, "image": "i"} if field != "stubs" else {"name": name})
        case.path, case.note = f"spec.{field}", f"{len(items)} items, at most {limit}"
        return
    if choice == "string":
        site = _pick_site(draw, case, lambda s: "maxLength" in s.schema and s.loc[-1] == "name")
        if site is None:
            return _fallback(draw, case)
        _set(case, site, "a" * (site.schema["maxLength"] + 1), f"{site.schema['maxLength'] + 1} characters")
        return None
    ints = [s for s in sites(spec) if s.schema.get("type") == "integer"]
    if choice == "number":
        ints = [s for s in ints if "minimum" in s.schema or "maximum" in s.schema]
    if not ints:
        return _fallback(draw, case)
    site = draw(st.sampled_from(ints))
    if choice == "huge":
        value = draw(st.sampled_from([2**63, 2**64 + 1, -(2**63) - 1, 2**53 + 1, 10**30]))
    else:
        options = []
        if "minimum" in site.schema:
            options.append(site.schema["minimum"] - 1)
        if "maximum" in site.schema:
            options.append(site.schema["maximum"] + 1)
        value = draw(st.sampled_from(options))
    _set(case, site, value, f"{value}")
    return None


BAD_DNS1035 = ("Upper", "1abc", "a_b", "a.b", "-a", "a-", "", "a b", "ab\n", "é", "a" * 51)
BAD_METADATA_NAMES = ("Upper", "a_b", "-a", "a-", "", "ab\n", "é", "a" * 64, "a" * 254, "a.b", "a..b",
                      "1abc", "a.b-c.d")


def bad_name(draw: st.DrawFn, case: Case) -> None:
    def is_name(s: Site) -> bool:
        pattern = s.schema.get("pattern", "")
        return s.schema.get("type") == "string" and (s.loc[-1] in ("name", "datastore") or isinstance(s.loc[-1], int)
                                                      and pattern.startswith("^[a-z]"))

    site = _pick_site(draw, case, is_name)
    if site is None:
        return _fallback(draw, case)
    value = draw(st.sampled_from(BAD_DNS1035))
    _set(case, site, value, f"name {value!r}")
    return None


def bad_metadata_name(draw: st.DrawFn, case: Case) -> None:
    value = draw(st.sampled_from(BAD_METADATA_NAMES + (None,)))
    if value is None:
        del case.body["metadata"]["name"]
    else:
        case.body["metadata"]["name"] = value
    case.path, case.note = "metadata.name", f"metadata.name {value!r}"


def missing_required(draw: st.DrawFn, case: Case) -> None:
    def has_required(s: Site) -> bool:
        value = s.parent[s.key]
        return isinstance(value, dict) and any(k in value for k in s.schema.get("required", ()))

    site = _pick_site(draw, case, has_required)
    if site is None:
        _ensure(_spec(case), "tests", 1)
        site = next(s for s in sites(_spec(case)) if s.loc == ("spec", "tests", 0))
    value = site.parent[site.key]
    key = draw(st.sampled_from([k for k in site.schema["required"] if k in value]))
    del value[key]
    case.path, case.note = format_path(site.loc + (key,)), f"required {key} removed"


def cycle(draw: st.DrawFn, case: Case) -> None:
    spec = _spec(case)
    where = draw(st.sampled_from(("components", "self", "seed", "tests")))
    if where in ("components", "self"):
        field = draw(st.sampled_from(COMPONENT_LISTS))
        items = _ensure(spec, field, 2)
        if where == "self":
            items[0].setdefault("dependsOn", []).append(items[0]["name"])
            case.path, case.note = f"spec.{field}[0].dependsOn", "depends on itself"
            return
        items[0].setdefault("dependsOn", []).append(items[1]["name"])
        items[1].setdefault("dependsOn", []).append(items[0]["name"])
        case.path, case.note = "dependsOn", f"{items[0]['name']} <-> {items[1]['name']}"
        return
    items = _ensure(spec, where, 2)
    items[0].setdefault("needs", []).append(items[1]["name"])
    items[1].setdefault("needs", []).append(items[0]["name"])
    case.path, case.note = "needs", f"{items[0]['name']} <-> {items[1]['name']}"


def duplicate_name(draw: st.DrawFn, case: Case) -> None:
    spec = _spec(case)
    group = draw(st.sampled_from((COMPONENT_LISTS, JOB_LISTS)))
    first, second = draw(st.sampled_from(group)), draw(st.sampled_from(group))
    if first == second:
        items = _ensure(spec, first, 2)
        items[1]["name"] = items[0]["name"]
        case.path, case.note = f"spec.{first}[1].name", "the same name twice in one list"
        return
    a, b = _ensure(spec, first, 1), _ensure(spec, second, 1)
    b[0]["name"] = a[0]["name"]
    # Both lists are at fault; errors name the later one (the CRD's rule, the models' loop).
    later = max(first, second, key=group.index)
    case.path, case.note = f"spec.{later}", f"a name of spec.{first} again in spec.{second}"


def unknown_reference(draw: st.DrawFn, case: Case) -> None:
    spec = _spec(case)
    where = draw(st.sampled_from(("dependsOn", "seed.needs", "tests.needs", "seed.datastore")))
    if where == "dependsOn":
        field = draw(st.sampled_from(COMPONENT_LISTS))
        _ensure(spec, field, 1)[0].setdefault("dependsOn", []).append("nowhere")
        case.path = f"spec.{field}[0].dependsOn"
    elif where == "seed.datastore":
        seed = _ensure(spec, "seed", 1)[0]
        seed["datastore"] = "nowhere"
        case.path = "spec.seed[0].datastore"
    else:
        field = where.split(".")[0]
        _ensure(spec, field, 1)[0].setdefault("needs", []).append("nowhere")
        case.path = f"spec.{field}[0].needs"
    case.note = "refers to 'nowhere'"


def cel_rule(draw: st.DrawFn, case: Case) -> None:
    spec = _spec(case)
    rule = draw(st.sampled_from(("service-neither", "seed-both", "seed-neither", "sql-no-datastore", "env-both")))
    if rule == "service-neither":
        svc = _ensure(spec, "services", 1)[0]
        svc.pop("image", None)
        svc.pop("copyFrom", None)
        case.path = "spec.services[0]"
    elif rule in ("seed-both", "seed-neither", "sql-no-datastore"):
        seed = _ensure(spec, "seed", 1)[0]
        if rule == "seed-both":
            seed.update(sql="SELECT 1", image="registry.test/seed:1")
        elif rule == "seed-neither":
            seed.pop("sql", None)
            seed.pop("image", None)
        else:
            seed.pop("image", None)
            seed.pop("datastore", None)
            seed["sql"] = "SELECT 1"
        case.path = "spec.seed[0]"
    else:
        field = draw(st.sampled_from(("services", "seed", "tests")))
        item = _ensure(spec, field, 1)[0]
        item.setdefault("env", []).append({"name": "BOTH", "value": "v", "valueFrom": {
            "secretKeyRef": {"namespace": "shared", "name": "s", "key": "k"}}})
        case.path = f"spec.{field}[0].env[{len(item['env']) - 1}]"
    case.note = rule


def bad_pattern(draw: st.DrawFn, case: Case) -> None:
    site = _pick_site(draw, case, lambda s: "pattern" in s.schema and isinstance(s.parent[s.key], str | int)
                      and not isinstance(s.parent[s.key], bool))
    if site is None:
        return _fallback(draw, case)
    current = str(site.parent[site.key])
    value = draw(st.sampled_from((current + "\n", " " + current, current + "!", "UPPER lower", "")))
    _set(case, site, value, f"{value!r} against {site.schema['pattern']}")
    return None


def bad_enum(draw: st.DrawFn, case: Case) -> None:
    site = _pick_site(draw, case, lambda s: "enum" in s.schema)
    if site is None:
        datastore = _ensure(_spec(case), "datastores", 1)[0]
        datastore["engine"] = draw(st.sampled_from(("postgresql", "Redis", "")))
        case.path, case.note = "spec.datastores[0].engine", f"engine {datastore['engine']!r}"
        return
    value = draw(st.sampled_from(("postgresql", "Redis", "", "CONNECTION_RESET")))
    _set(case, site, value, f"{value!r} not in {site.schema['enum']}")


MUTATORS = {name: globals()[name] for name in MUTATIONS}
