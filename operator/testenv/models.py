"""The TestEnvironment API: spec and status as pydantic models.

These models are the single source of truth: `crd.py` turns them into the
CRD's OpenAPI schema, the operator parses every object through them, and the
CLI validates manifests with them before they reach the cluster.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator
from pydantic.alias_generators import to_camel

GROUP = "testenv.dev"
VERSION = "v1alpha1"
KIND: Final = "TestEnvironment"
PLURAL = "testenvironments"
SINGULAR = "testenvironment"
SHORT_NAMES = ["tenv", "te"]
# GROUP/VERSION, spelt out: Final keeps the literal as its type (the apiVersion field's).
API_VERSION: Final = "testenv.dev/v1alpha1"

# Component names become Service names, so they follow DNS-1035 labels (a
# leading letter). They also prefix Job, Secret and ConfigMap names, hence the
# tighter length limits.
COMPONENT_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"

ComponentName = Annotated[
    str,
    Field(
        pattern=COMPONENT_NAME_PATTERN,
        min_length=1,
        max_length=50,
        description="A DNS-1035 label: lower-case letters, digits and '-', starting with a letter.",
    ),
]
JobName = Annotated[
    str,
    Field(
        pattern=COMPONENT_NAME_PATTERN,
        min_length=1,
        max_length=40,
        description="A DNS-1035 label of at most 40 characters (run and shard suffixes are added).",
    ),
]
NamespaceName = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
# An image reference as the kubelet parses it (the distribution project's
# grammar: [host[:port]/]path[:tag][@digest], the path lower case). The API
# server takes any string for a pod's image and the kubelet then refuses it
# (InvalidImageName), so without this a bad one passed admission and, where
# no kubelet judges it (KWOK's nodes), left its pod waiting for ever. ASCII
# classes, not \w, so Python's, pydantic's and the API server's regexes agree.
_ALNUM = "[a-z0-9]+"
_PATH_COMPONENT = f"{_ALNUM}(?:(?:[._]|__|-+){_ALNUM})*"
_DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = f"(?:{_DOMAIN_COMPONENT}(?:[.]{_DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])"
TAG_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
IMAGE_PATTERN = (
    f"^(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    f"(?::{TAG_PATTERN[1:-1]})?"
    "(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
ImageRef = Annotated[
    str,
    Field(
        pattern=IMAGE_PATTERN,
        min_length=1,
        max_length=255,
        description="An image reference, [registry[:port]/]path[:tag][@digest], the path lower case.",
    ),
]

# What each pattern asks for, in words: pydantic's own message quotes the regex.
PATTERN_MEANINGS: Final = {
    COMPONENT_NAME_PATTERN: "a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, "
    "ending with a letter or digit)",
    DNS_LABEL_PATTERN: "a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit)",
    ENV_NAME_PATTERN: "an environment variable name (letters, digits, '_', '-' and '.', not starting with a digit)",
    IMAGE_PATTERN: "an image reference ([registry[:port]/]path[:tag][@digest], the path in lower case, "
    "like ghcr.io/acme/e2e:sha-abc123)",
    TAG_PATTERN: "an image tag (letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-')",
}


def pattern_message(error: Mapping[str, Any]) -> str | None:
    """A pattern mismatch said in words, naming the value; None for any other error."""
    if error.get("type") != "string_pattern_mismatch":
        return None
    meaning = PATTERN_MEANINGS.get((error.get("ctx") or {}).get("pattern", ""))
    return None if meaning is None else f"{error.get('input')!r} is not {meaning}"


# A quota's amount, as a ResourceQuota takes it: not negative, and an
# exponent a whole number (the OpenAPI pattern Kubernetes publishes for
# quantities allows 1e1.5, which its parser then refuses); a number of pods
# a whole number (no 500m, no 1.5).
QUANTITY_PATTERN = r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]+))?$"
COUNT_PATTERN = r"^\+?[0-9]+(([KMGTPE]i)|[kMGTPE])?$"


def _amount(pattern: str, like: str) -> Callable[[int | str], int | str]:
    def check(value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"{value} is negative; a quota is 0 or more")
        if isinstance(value, str) and not re.fullmatch(pattern, value):  # `$` alone would let "1\n" through
            raise ValueError(f"{value!r} is not {like}")
        return value

    return check


# Kubernetes checks a whole-number resource (pods) in thousandths held in an
# int64: past about 9.2e15 its "must be an integer" refuses the ResourceQuota.
# 1e15, as the bound, is exact where the API server compares numbers as
# float64 (2**63 // 1000 is not: one more slipped through).
COUNT_MAX = 10**15
_COUNT_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def _countable(value: int | str) -> int | str:
    if isinstance(value, str):
        digits, unit = re.fullmatch(r"\+?([0-9]+)(.*)", value).groups()  # type: ignore[union-attr]  # COUNT_PATTERN held
        number = int(digits) * _COUNT_UNITS[unit]
    else:
        number = value
    if number > COUNT_MAX:
        raise ValueError(f"{value!r} is more than a ResourceQuota can hold (at most {COUNT_MAX})")
    return value


# Durations and counts the operator adds to dates, or hands on where 32 bits
# hold them (WireMock's integers), are bounded as Kubernetes bounds its int32
# fields: in seconds, 68 years. Past about 7,900 years a date overflows.
INT32_MAX = 2**31 - 1
Quantity = Annotated[
    StrictInt | str,
    AfterValidator(_amount(QUANTITY_PATTERN, "a Kubernetes quantity of 0 or more (like 500m, 2, 8Gi)")),
    Field(json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN, "minimum": 0}),
]
Count = Annotated[
    StrictInt | str,
    AfterValidator(_amount(COUNT_PATTERN, "a whole number of 0 or more (like 30, 1k)")),
    AfterValidator(_countable),
    Field(json_schema_extra={
        "x-kubernetes-int-or-string": True, "pattern": COUNT_PATTERN, "minimum": 0, "maximum": COUNT_MAX,
        "x-kubernetes-validations": [{
            "rule": f"type(self) == int || !isQuantity(self) || !quantity(self).isGreaterThan(quantity('{COUNT_MAX}'))",
            "message": f"more than a ResourceQuota can hold (at most {COUNT_MAX})"}],
    }),
]
FreeForm = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}),
]


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- spec -----------------------------------------------------------------

# What users write goes through the API server's JSON reading before its
# schema is checked, so the models read it the same way (and the CLI refuses
# what the API server refuses, no more, no less): a null field is an unset
# one (pruned, also inside free-form values; list items stay); a number like
# 2.0 is the integer 2, one beyond int64 no integer at all. Integers and
# booleans are strict (StrictInt, StrictBool): "2" and true are not integers,
# "true" and 1 not booleans, though pydantic's lax mode would take them.
INT64_MIN, INT64_MAX, FLOAT_EXACT = -(2**63), 2**63 - 1, 2**53


def _holds_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_models(arg) for arg in typing.get_args(annotation))


@cache
def _fields_holding_models(model: type[BaseModel]) -> dict[str, bool]:
    """Each field's names (Python and wire) -> whether it holds models (which read their own fields)."""
    out: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        out[name] = _holds_models(info.annotation)
        if info.alias:
            out[info.alias] = out[name]
    return out


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= FLOAT_EXACT:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        try:
            return float(value)
        except OverflowError:
            return math.inf
    return value


class SpecModel(Model):
    """A part of the spec, read as the API server reads it (see above)."""

    @model_validator(mode="before")
    @classmethod
    def _as_the_api_server_reads_it(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = _fields_holding_models(cls)
        keeps_unknown = cls.model_config.get("extra") == "allow"
        out = {}
        for key, value in data.items():
            if key not in fields and not keeps_unknown:
                out[key] = value  # an unknown field is refused, null or not
            elif value is not None:
                out[key] = value if fields.get(key) else _without_nulls(_json_number(value))
        return out


class Lifecycle(SpecModel):
    ttl_seconds_after_finished: StrictInt | None = Field(
        default=None,
        ge=0, le=INT32_MAX,
        description="Delete the environment's namespace this long after the run Succeeded.",
    )
    retain_on_failure_seconds: StrictInt | None = Field(
        default=None,
        ge=0, le=INT32_MAX,
        description="Keep a Failed or TimedOut environment this long for debugging, then delete it.",
    )
    active_deadline_seconds: StrictInt | None = Field(
        default=None,
        ge=1, le=INT32_MAX,
        description=(
            "The whole run must finish within this many seconds of its start, else it is TimedOut: "
            "seeds and suites still running are stopped first, so what they wrote so far is kept. "
            "A preview environment (no tests) that was Ready ends normally here (Succeeded)."
        ),
    )
    failure_grace_seconds: StrictInt | None = Field(
        default=None,
        ge=0, le=INT32_MAX,
        description=(
            "How long a pod-level cause that may still fix itself (an image not pushed yet, a missing Secret, "
            "no node that fits, a full quota) is waited out before the run ends in Error with that reason "
            "(seeds and suites still running are stopped first, so what they wrote so far is kept); "
            "the operator's default when unset."
        ),
    )


class ResourceQuota(SpecModel):
    cpu: Quantity | None = Field(default=None, description="requests.cpu and limits.cpu of the namespace.")
    memory: Quantity | None = Field(default=None, description="requests.memory and limits.memory.")
    pods: Count | None = Field(default=None, description="The number of pods.")


class Isolation(SpecModel):
    network_policy: StrictBool = Field(
        default=True, description="Deny ingress from other namespaces (the operator's own is allowed)."
    )
    resource_quota: ResourceQuota | None = Field(
        default=None, description="The namespace's ResourceQuota; the operator's default when unset."
    )


class Engine(StrEnum):
    POSTGRES = "postgres"
    MYSQL = "mysql"
    REDIS = "redis"
    MONGODB = "mongodb"


class Datastore(SpecModel):
    name: ComponentName
    engine: Engine
    version: str | None = Field(
        default=None,
        pattern=TAG_PATTERN,
        max_length=128,
        description="The engine's image tag; the operator's configured default when unset.",
    )
    database: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description="The database to create (postgres, mysql, mongodb); defaults to the datastore's name.",
    )
    depends_on: list[ComponentName] = Field(default_factory=list, max_length=32)


# WireMock's mapping format. The fields we know are typed so that a typo in
# them is rejected at admission; anything else WireMock understands passes
# through untouched.
class StubRequest(SpecModel):
    model_config = ConfigDict(extra="allow")

    method: str | None = Field(default=None, pattern=r"^(ANY|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|TRACE)$")
    url: str | None = None
    url_path: str | None = None
    url_pattern: str | None = None
    url_path_pattern: str | None = None
    headers: FreeForm | None = None
    query_parameters: FreeForm | None = None
    body_patterns: list[FreeForm] | None = None


class Fault(StrEnum):
    CONNECTION_RESET_BY_PEER = "CONNECTION_RESET_BY_PEER"
    EMPTY_RESPONSE = "EMPTY_RESPONSE"
    MALFORMED_RESPONSE_CHUNK = "MALFORMED_RESPONSE_CHUNK"
    RANDOM_DATA_THEN_CLOSE = "RANDOM_DATA_THEN_CLOSE"


class StubResponse(SpecModel):
    model_config = ConfigDict(extra="allow")

    status: StrictInt | None = Field(default=None, ge=100, le=599)
    headers: dict[str, str] | None = None
    body: str | None = None
    json_body: Any = Field(default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    fixed_delay_milliseconds: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    fault: Fault | None = Field(default=None, description="Simulate a network fault instead of a response.")


class StubMapping(SpecModel):
    model_config = ConfigDict(extra="allow")

    request: StubRequest
    response: StubResponse = Field(default_factory=StubResponse)
    priority: StrictInt | None = Field(default=None, ge=1, le=INT32_MAX)


class RequestCount(SpecModel):
    at_least: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    at_most: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    exactly: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)


class StubVerification(SpecModel):
    request: StubRequest
    count: RequestCount = Field(
        default_factory=lambda: RequestCount(at_least=1),
        description="How many matching requests the stub must have received; at least one when unset.",
    )


class Stub(SpecModel):
    name: ComponentName
    port: StrictInt = Field(default=8080, ge=1, le=65535, description="The Service port the stub answers on.")
    image: ImageRef | None = Field(default=None, description="The WireMock image; the operator's default when unset.")
    mappings: list[StubMapping] = Field(default_factory=list, max_length=500)
    verify: list[StubVerification] = Field(default_factory=list, max_length=100)
    depends_on: list[ComponentName] = Field(default_factory=list, max_length=32)


# The names the operator gives unnamed ports (service_name), so no port may take one.
UNNAMED_PORT_NAME_PATTERN = "^p[0-9]+$"
_RESERVED_PORT_NAME = "p<number> is the name an unnamed port gets; choose another"


def _repeated(values: list[Any]) -> list[Any]:
    """The values that occur more than once, each once, in order."""
    return sorted({v for v in values if values.count(v) > 1}, key=str)


class ServicePort(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"!has(self.name) || !self.name.matches('{UNNAMED_PORT_NAME_PATTERN}')",
                 "message": _RESERVED_PORT_NAME, "fieldPath": ".name"}
            ]
        }
    )

    port: StrictInt = Field(ge=1, le=65535)
    target_port: StrictInt | None = Field(default=None, ge=1, le=65535, description="Defaults to port.")
    name: str | None = Field(default=None, pattern=DNS_LABEL_PATTERN, max_length=15)

    @model_validator(mode="after")
    def _not_an_unnamed_ports_name(self) -> ServicePort:
        if self.name is not None and re.fullmatch(UNNAMED_PORT_NAME_PATTERN, self.name):
            raise ValueError(_RESERVED_PORT_NAME)
        return self

    @property
    def service_name(self) -> str:
        """The port's name in the Service: its own, else p<port>."""
        return self.name or f"p{self.port}"


def _each_port_once(ports: list[ServicePort]) -> list[ServicePort]:
    # A Service's ports are keyed by number and by name; a repeat was admitted
    # here and refused only when the operator applied the Service.
    numbers: list[object] = [p.port for p in ports]
    names: list[object] = [p.service_name for p in ports]
    for what, values, own in (("port", numbers, "number"), ("name", names, "name")):
        if twice := _repeated(values):
            raise ValueError(f"{what} {', '.join(map(repr, twice))} used more than once; give each port its own {own}")
    return ports


PortList = Annotated[
    list[ServicePort],
    AfterValidator(_each_port_once),
    Field(
        max_length=16,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.all(p, self.exists_one(q, q.port == p.port))",
                 "message": "a port used more than once; give each port its own number"},
                {"rule": "self.all(p, !has(p.name) || self.exists_one(q, has(q.name) && q.name == p.name))",
                 "message": "a port name used more than once; give each port its own"},
            ]
        },
    ),
]


class SecretKeyRef(SpecModel):
    """A key of a Secret that already exists in a namespace the operator's
    administrator allowed (config.copySecrets): only that key is copied into
    the environment, and the variable refers to the copy."""

    namespace: NamespaceName
    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", min_length=1, max_length=253)]
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", min_length=1, max_length=253)]


class EnvVarSource(SpecModel):
    secret_key_ref: SecretKeyRef


class EnvVar(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # value defaults to "", so an empty one is no value.
                    "rule": "!has(self.valueFrom) || !has(self.value) || self.value == ''",
                    "message": "set value or valueFrom, not both",
                }
            ]
        }
    )

    name: str = Field(pattern=ENV_NAME_PATTERN, max_length=256)
    value: str = ""
    value_from: EnvVarSource | None = Field(
        default=None,
        description=(
            "secretKeyRef: {namespace, name, key} of an existing Secret in a namespace the operator allows; "
            "its value never shows in status, Events or logs."
        ),
    )

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


def _each_name_once(items: list[EnvVar]) -> list[EnvVar]:
    # A container's env is a list keyed by name for server-side apply: the API
    # server admitted a TestEnvironment with a name twice, then failed every
    # apply of its pod template with a 500 (found by fuzz_manifests.py).
    if twice := _repeated([e.name for e in items]):
        raise ValueError(f"{', '.join(map(repr, twice))} set more than once; set each variable once")
    return items


EnvList = Annotated[list[EnvVar], AfterValidator(_each_name_once), Field(max_length=100)]


# An annotation key as the API server checks a pod's: [prefix/]name, the
# prefix a DNS subdomain of at most 253, the name at most 63. The CRD took any
# key, and the API server then refused the seed's or suite's Job.
ANNOTATION_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_ANNOTATION_KEY_RULE = (
    "a key must be [prefix/]name: the prefix a DNS subdomain of at most 253 characters, the name at most 63 "
    "of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
)


MAX_POD_ANNOTATIONS = 64  # a bound keeps the CEL rule within the API server's cost budget


def _annotation_keys(annotations: dict[str, str]) -> dict[str, str]:
    if len(annotations) > MAX_POD_ANNOTATIONS:
        raise ValueError(f"{len(annotations)} annotations; at most {MAX_POD_ANNOTATIONS}")
    bad = [k for k in annotations if not re.fullmatch(ANNOTATION_KEY_PATTERN, k) or k.find("/") > 253]
    if bad:
        raise ValueError(f"{', '.join(map(repr, bad))}: {_ANNOTATION_KEY_RULE}")
    return annotations


PodAnnotations = Annotated[
    dict[str, str],
    AfterValidator(_annotation_keys),
    Field(
        description="Put on the pods as they are (on the local test bed they tell KWOK how a container ends).",
        json_schema_extra={
            "maxProperties": MAX_POD_ANNOTATIONS,
            "x-kubernetes-validations": [
                {"rule": f"self.all(k, k.matches('{ANNOTATION_KEY_PATTERN}') && k.indexOf('/') <= 253)",
                 "message": _ANNOTATION_KEY_RULE}
            ]
        },
    ),
]


class CopyFrom(SpecModel):
    namespace: NamespaceName
    deployment: Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=253)]


# A readiness probe, typed as core/v1's: a field the Probe has not (a typo,
# terminationGracePeriodSeconds, which readiness probes may not set) was
# admitted as free-form and refused only when the operator applied the
# Deployment, half-provisioned (fuzz_manifests.py, seed 20261201).
# A port's name as Kubernetes takes it: a-z, 0-9 and single inner hyphens,
# one letter at least (no lookahead: the API server's regexes are RE2).
IANA_SVC_NAME_PATTERN = r"^(?:[0-9]+-)*[0-9]*[a-z][a-z0-9]*(?:-[a-z0-9]+)*$"


def _probe_port(value: int | str) -> int | str:
    if isinstance(value, int) and not 1 <= value <= 65535:
        raise ValueError(f"{value} is no port: use 1-65535, or a container port's name")
    if isinstance(value, str) and (len(value) > 15 or not re.fullmatch(IANA_SVC_NAME_PATTERN, value)):
        raise ValueError(f"{value!r} is no container port's name (up to 15 of a-z, 0-9 and inner -, a letter at least)")
    return value


ProbePort = Annotated[
    StrictInt | str,
    AfterValidator(_probe_port),
    Field(json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": IANA_SVC_NAME_PATTERN,
                             "maxLength": 15, "minimum": 1, "maximum": 65535}),
]


class ExecAction(SpecModel):
    command: list[str] = Field(min_length=1, description="Run in the container; exit 0 is ready.")


class HTTPHeader(SpecModel):
    name: str = Field(pattern=r"^[-A-Za-z0-9]+$", max_length=256)
    value: str


class HTTPGetAction(SpecModel):
    port: ProbePort
    path: str | None = None
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(SpecModel):
    port: ProbePort
    host: str | None = None


class GRPCAction(SpecModel):
    port: StrictInt = Field(ge=1, le=65535)
    service: str | None = None


_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_ONE_HANDLER = "set exactly one of exec, httpGet, tcpSocket or grpc"


class Probe(SpecModel):
    """core/v1's Probe as a readiness probe takes it."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": " + ".join(f"(has(self.{h}) ? 1 : 0)" for h in _PROBE_HANDLERS) + " == 1",
        "message": _ONE_HANDLER}]})

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    timeout_seconds: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    period_seconds: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    success_threshold: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)
    failure_threshold: StrictInt | None = Field(default=None, ge=0, le=INT32_MAX)

    @model_validator(mode="after")
    def _one_handler(self) -> Probe:
        if sum(h is not None for h in (self.exec, self.http_get, self.tcp_socket, self.grpc)) != 1:
            raise ValueError(_ONE_HANDLER)
        return self


class Service(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.image) || has(self.copyFrom)",
                    "message": "set image, or copyFrom to copy a Deployment (image then overrides its image)",
                }
            ]
        }
    )

    name: ComponentName
    image: ImageRef | None = Field(
        default=None, description="The image to run; with copyFrom it replaces the copied image."
    )
    copy_from: CopyFrom | None = Field(
        default=None, description="Copy this Deployment (and the Services selecting it) from an allowed namespace."
    )
    command: list[str] | None = None
    args: list[str] | None = None
    replicas: StrictInt = Field(default=1, ge=0, le=10)
    ports: PortList = Field(default_factory=list)
    env: EnvList = Field(default_factory=list)
    depends_on: list[ComponentName] = Field(default_factory=list, max_length=32)
    readiness_probe: Probe | None = Field(default=None, description="A core/v1 Probe; with copyFrom it replaces "
                                          "the copied one.")

    @model_validator(mode="after")
    def _image_or_copy(self) -> Service:
        if not self.image and not self.copy_from:
            raise ValueError("set image, or copyFrom to copy a Deployment (image then overrides its image)")
        return self


class Seed(SpecModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.sql) != has(self.image)",
                    "message": "set exactly one of sql (with datastore) or image",
                },
                {"rule": "!has(self.sql) || has(self.datastore)", "message": "sql needs datastore"},
            ]
        }
    )

    name: JobName
    datastore: ComponentName | None = Field(
        default=None, description="The datastore this seed fills; services that use it start after it."
    )
    sql: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Statements run through the engine's own client, stopping at the first error: "
            "SQL for postgres and mysql, redis-cli commands for redis, JavaScript for mongodb."
        ),
    )
    image: ImageRef | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: EnvList = Field(default_factory=list)
    needs: list[JobName] = Field(default_factory=list, max_length=32)
    timeout_seconds: StrictInt | None = Field(default=None, ge=1, le=INT32_MAX)
    pod_annotations: PodAnnotations = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sql_or_image(self) -> Seed:
        if (self.sql is None) == (self.image is None):
            raise ValueError("set exactly one of sql (with datastore) or image")
        if self.sql is not None and self.datastore is None:
            raise ValueError("sql needs datastore")
        return self


class TestSuite(SpecModel):
    __test__: ClassVar[bool] = False  # not a pytest class

    name: JobName
    image: ImageRef
    command: list[str] | None = None
    args: list[str] | None = None
    env: EnvList = Field(default_factory=list)
    needs: list[JobName] = Field(default_factory=list, max_length=32)
    shards: StrictInt = Field(default=1, ge=1, le=100, description="Run as an Indexed Job of this many shards.")
    retries: StrictInt = Field(default=0, ge=0, le=10, description="The Job's backoffLimit.")
    timeout_seconds: StrictInt | None = Field(
        default=None, ge=1, le=INT32_MAX, description="Each attempt's deadline (its pod's activeDeadlineSeconds); a retry gets "
        "a new one. A timed-out attempt's results and log tail are kept.")
    fail_fast: StrictBool = Field(default=True, description="A failure of this suite cancels suites not yet started.")
    pod_annotations: PodAnnotations = Field(default_factory=dict)


def _names_disjoint(a: str, b: str) -> str:
    return f"!has(self.{a}) || !has(self.{b}) || self.{a}.all(x, !self.{b}.exists(y, y.name == x.name))"


class TestEnvironmentSpec(SpecModel):
    __test__: ClassVar[bool] = False
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # fieldPath: the API server's error then names spec.<b>, not just spec.
                {"rule": _names_disjoint(a, b), "message": f"a name is used in both {a} and {b}: {why}",
                 "fieldPath": f".{b}"}
                for a, b, why in (
                    ("datastores", "stubs", "datastores, stubs and services share one namespace"),
                    ("datastores", "services", "datastores, stubs and services share one namespace"),
                    ("stubs", "services", "datastores, stubs and services share one namespace"),
                    ("seed", "tests", "Jobs share one namespace"),
                )
            ]
        }
    )

    # `default: {}` in the schema lets the API server fill in the nested
    # defaults, so a stored object shows the isolation it actually gets.
    lifecycle: Lifecycle = Field(default_factory=Lifecycle, json_schema_extra={"default": {}})
    isolation: Isolation = Field(default_factory=Isolation, json_schema_extra={"default": {}})
    datastores: list[Datastore] = Field(default_factory=list, max_length=20)
    stubs: list[Stub] = Field(default_factory=list, max_length=20)
    services: list[Service] = Field(default_factory=list, max_length=50)
    seed: list[Seed] = Field(default_factory=list, max_length=50)
    tests: list[TestSuite] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _unique_names(self) -> TestEnvironmentSpec:
        # Mirrors the CRD's list-map keys and CEL rules, so that the CLI and
        # unit tests reject the same input the API server does.
        seen: dict[str, str] = {}
        for field in ("datastores", "stubs", "services"):
            for item in getattr(self, field):
                if item.name in seen:
                    raise ValueError(f"spec.{field}: name {item.name!r} is already used in spec.{seen[item.name]}")
                seen[item.name] = field
        jobs: dict[str, str] = {}
        for field in ("seed", "tests"):
            for item in getattr(self, field):
                if item.name in jobs:
                    raise ValueError(f"spec.{field}: name {item.name!r} is already used in spec.{jobs[item.name]}")
                jobs[item.name] = field
        return self

    def components(self) -> list[Datastore | Stub | Service]:
        return [*self.datastores, *self.stubs, *self.services]


# --- status ---------------------------------------------------------------


class Phase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    PROVISIONING = "Provisioning"
    SEEDING = "Seeding"
    TESTING = "Testing"
    READY = "Ready"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    ERROR = "Error"
    TERMINATING = "Terminating"


FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.TIMED_OUT, Phase.ERROR})


class ComponentKind(StrEnum):
    DATASTORE = "datastore"
    STUB = "stub"
    SERVICE = "service"


class Provenance(Model):
    """What ran: the image as the pod asked for it and the digest the node resolved it to."""

    reason: str | None = Field(
        default=None, description="Why its pods do not come up (e.g. ImagePullBackOff), while that lasts."
    )
    image: str | None = Field(default=None, description="The image its pod ran.")
    image_digest: str | None = Field(default=None, description="The image's resolved digest (the pod's imageID).")


class ComponentStatus(Provenance):
    name: str
    kind: ComponentKind
    ready: bool = False
    message: str = ""
    notes: list[str] | None = Field(
        default=None,
        description=(
            "What a copy (copyFrom) brought along, changed on purpose or could not honour "
            "(claims made emptyDir, the source's ServiceAccount not used)."
        ),
    )


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class SeedStatus(Provenance):
    name: str
    phase: JobPhase = JobPhase.PENDING
    message: str = ""


class Counts(Model):
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            skipped=self.skipped + other.skipped,
        )


class SuiteResults(Model):
    """What was kept of a suite's (or seed's) last attempts: `testenv results` fetches it."""

    attempts: int = 0
    files: int = 0
    reports: int = Field(default=0, description="JUnit files among the files; the counts come from them.")
    bytes: int = 0
    notes: list[str] = Field(default_factory=list, description="What was cut, skipped or could not be kept, and why.")


class SuiteStatus(Counts, Provenance):
    name: str
    phase: JobPhase = JobPhase.PENDING
    duration_seconds: float | None = None
    failures: list[str] = Field(default_factory=list)
    message: str = ""
    results: SuiteResults | None = None


class RunResults(Model):
    """Where this run's results are kept; they outlive the environment's namespace."""

    index: str = Field(description="The ConfigMap, in this resource's namespace, that lists them.")
    store: str = Field(description="Where the files are: configmap or s3.")
    endpoint: str | None = Field(default=None, description="The S3 endpoint; `testenv results` fetches from it only.")
    logs: int = Field(default=0, description="Log tails kept of containers that failed.")
    notes: list[str] = Field(default_factory=list, description="Log tails that were not kept, and why.")
    expired: bool = Field(default=False, description="Deleted: resultsRetentionSeconds passed.")


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(Model):
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str | None = None


class EndingCause(Model):
    """A cause that will not fix itself, found while the run went on. The
    run ends Error for it, once what was running has handed over what it
    wrote so far."""

    since: str = Field(description="When the operator found it; what ran then is stopped.")
    reason: str = Field(description="As on the component, seed or suite it concerns, e.g. CrashLoopBackOff.")
    message: str = Field(description="Where and what, e.g. `datastore db: container postgres ...`.")


class TestEnvironmentStatus(Model):
    __test__: ClassVar[bool] = False

    phase: Phase = Phase.PENDING
    message: str = ""
    namespace: str | None = None
    observed_generation: int | None = None
    run: int = 0
    started_at: str | None = None
    ready_at: str | None = None
    finished_at: str | None = None
    expires_at: str | None = None
    ready_components: str | None = Field(default=None, description="ready/total, for kubectl get.")
    test_counts: str | None = Field(default=None, description="passed/failed, for kubectl get.")
    components: list[ComponentStatus] = Field(default_factory=list)
    seeds: list[SeedStatus] = Field(default_factory=list)
    tests: list[SuiteStatus] = Field(default_factory=list)
    summary: Counts | None = None
    results: RunResults | None = None
    ending_cause: EndingCause | None = None
    conditions: list[Condition] = Field(default_factory=list)


class TestEnvironment(Model):
    __test__: ClassVar[bool] = False

    api_version: Literal["testenv.dev/v1alpha1"] = API_VERSION
    kind: Literal["TestEnvironment"] = KIND
    metadata: FreeForm = Field(default_factory=dict)
    spec: TestEnvironmentSpec = Field(default_factory=TestEnvironmentSpec)
    status: TestEnvironmentStatus | None = None
