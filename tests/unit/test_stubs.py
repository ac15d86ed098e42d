"""The stub builders and verification judge, without a cluster or WireMock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from testenv.build.common import LABEL_COMPONENT, LABEL_ENV_UID, LABEL_KIND, EnvRef
from testenv.build.stubs import (
    ANNOTATION_MAPPINGS_HASH,
    COPY_MAPPINGS_SCRIPT,
    WIREMOCK_PORT,
    mapping_files,
    stub_objects,
    stub_url,
)
from testenv.models import JobPhase, Stub, StubVerification
from testenv.stubverify import (
    COUNT_PATH,
    JOURNAL_LIMIT,
    MAX_JOURNAL_MESSAGE,
    count_request_body,
    describe_journal,
    judge,
    verification_status,
    verify_stub,
)

ENV = EnvRef(name="pr-1", namespace="ci", uid="uid-1", target_namespace="te-pr-1-abcde")
IMAGE = "wiremock/wiremock:3.13.1"


def payment(**extra: Any) -> Stub:
    return Stub.model_validate(
        {
            "name": "payment-gateway",
            "port": 9090,
            "mappings": [
                {
                    "request": {"method": "POST", "urlPath": "/charge"},
                    "response": {"status": 200, "jsonBody": {"status": "success"}, "fixedDelayMilliseconds": 50},
                },
                {"request": {"method": "GET", "urlPathPattern": "/charges/[0-9]+"}, "response": {"status": 404}},
            ],
            **extra,
        }
    )


def objects(stub: Stub) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in stub_objects(stub, ENV, IMAGE)}


def pod_spec(stub: Stub) -> dict[str, Any]:
    return objects(stub)["Deployment"]["spec"]["template"]["spec"]


def verification(count: dict[str, int] | None = None) -> StubVerification:
    raw: dict[str, Any] = {"request": {"method": "POST", "urlPath": "/charge"}}
    if count is not None:
        raw["count"] = count
    return StubVerification.model_validate(raw)


# --- mapping files ----------------------------------------------------------


def test_mapping_files_are_named_by_index_method_and_url() -> None:
    assert list(mapping_files(payment())) == ["001-post-charge.json", "002-get-charges-0-9.json"]


def test_mapping_file_without_method_or_url_is_any_root() -> None:
    stub = Stub.model_validate({"name": "s", "mappings": [{"request": {}}]})
    assert list(mapping_files(stub)) == ["001-any-root.json"]


def test_mapping_file_slug_is_bounded() -> None:
    stub = Stub.model_validate({"name": "s", "mappings": [{"request": {"url": "/" + "a" * 200}}]})
    (name,) = mapping_files(stub)
    assert len(name) <= len("001-any-.json") + 40


def test_mapping_files_are_valid_configmap_keys() -> None:
    stub = Stub.model_validate({"name": "s", "mappings": [{"request": {"urlPattern": "/x?y=1&z=%20"}}]})
    (name,) = mapping_files(stub)
    assert all(c.isalnum() or c in "-._" for c in name)


def test_mapping_file_content_is_wiremock_camel_case() -> None:
    content = json.loads(mapping_files(payment())["001-post-charge.json"])
    assert content == {
        "request": {"method": "POST", "urlPath": "/charge"},
        "response": {"status": 200, "jsonBody": {"status": "success"}, "fixedDelayMilliseconds": 50},
    }


def test_mapping_file_passes_unknown_wiremock_keys_through() -> None:
    stub = Stub.model_validate(
        {
            "name": "s",
            "mappings": [
                {
                    "id": "8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7",
                    "request": {"method": "GET", "url": "/x", "cookies": {"s": {"equalTo": "1"}}},
                    "response": {"status": 200, "transformers": ["response-template"]},
                    "priority": 2,
                }
            ],
        }
    )
    content = json.loads(next(iter(mapping_files(stub).values())))
    assert content["id"] == "8c5db8b0-2db4-4ad7-a99f-38c9b00da3f7"
    assert content["priority"] == 2
    assert content["request"]["cookies"] == {"s": {"equalTo": "1"}}
    assert content["response"]["transformers"] == ["response-template"]


def test_mapping_file_writes_fault_as_its_name() -> None:
    stub = Stub.model_validate(
        {"name": "s", "mappings": [{"request": {"url": "/x"}, "response": {"fault": "CONNECTION_RESET_BY_PEER"}}]}
    )
    content = json.loads(next(iter(mapping_files(stub).values())))
    assert content["response"] == {"fault": "CONNECTION_RESET_BY_PEER"}


def test_mapping_file_leaves_unset_fields_out() -> None:
    stub = Stub.model_validate({"name": "s", "mappings": [{"request": {"method": "GET", "url": "/x"}}]})
    assert json.loads(next(iter(mapping_files(stub).values()))) == {
        "request": {"method": "GET", "url": "/x"},
        "response": {},
    }


def test_no_mappings_no_files() -> None:
    assert mapping_files(Stub(name="s")) == {}


# --- objects ------------------------------------------------------------------


def test_stub_objects_are_configmap_deployment_service_in_target_namespace() -> None:
    built = stub_objects(payment(), ENV, IMAGE)
    assert [(o["kind"], o["metadata"]["name"]) for o in built] == [
        ("ConfigMap", "payment-gateway-mappings"),
        ("Deployment", "payment-gateway"),
        ("Service", "payment-gateway"),
    ]
    assert {o["metadata"]["namespace"] for o in built} == {"te-pr-1-abcde"}


def test_every_object_carries_component_labels() -> None:
    for o in stub_objects(payment(), ENV, IMAGE):
        labels = o["metadata"]["labels"]
        assert labels[LABEL_COMPONENT] == "payment-gateway"
        assert labels[LABEL_KIND] == "stub"
        assert labels[LABEL_ENV_UID] == "uid-1"


def test_configmap_holds_the_mapping_files() -> None:
    stub = payment()
    assert objects(stub)["ConfigMap"]["data"] == mapping_files(stub)


def test_deployment_runs_one_wiremock_with_the_default_image() -> None:
    deployment = objects(payment())["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    assert "--disable-banner" in container["args"]
    assert "--port=8080" in container["args"]
    assert "--root-dir=/home/wiremock" in container["args"]


def test_stub_image_overrides_the_default() -> None:
    spec = pod_spec(payment(image="registry.local/wiremock:3"))
    assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {"registry.local/wiremock:3"}


def test_deployment_selects_its_pods_by_component() -> None:
    deployment = objects(payment())["Deployment"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {LABEL_COMPONENT: "payment-gateway"}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_deployment_never_runs_two_wiremocks_at_once() -> None:
    assert objects(payment())["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}


def test_readiness_probe_asks_wiremock_health() -> None:
    (container,) = pod_spec(payment())["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/__admin/health", "port": 8080}


def test_mappings_reach_wiremock_root_through_a_copy() -> None:
    spec = pod_spec(payment())
    (init,) = spec["initContainers"]
    assert init["command"][:3] == ["sh", "-c", COPY_MAPPINGS_SCRIPT]
    assert init["command"][-2:] == ["/etc/wiremock/mappings", "/home/wiremock/mappings"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["mappings"]["configMap"] == {"name": "payment-gateway-mappings"}
    assert "emptyDir" in volumes["wiremock-root"]
    (container,) = spec["containers"]
    assert container["volumeMounts"] == [{"name": "wiremock-root", "mountPath": "/home/wiremock"}]


def test_pod_is_restricted() -> None:
    spec = pod_spec(payment())
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert isinstance(spec["securityContext"]["runAsUser"], int)
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in spec["containers"] + spec["initContainers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["runAsNonRoot"] is True
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}


def hash_of(stub: Stub) -> str:
    return objects(stub)["Deployment"]["spec"]["template"]["metadata"]["annotations"][ANNOTATION_MAPPINGS_HASH]


def test_mappings_hash_is_stable() -> None:
    assert hash_of(payment()) == hash_of(payment())


def test_mappings_hash_changes_when_a_mapping_changes() -> None:
    changed = payment()
    changed.mappings[0].response.status = 201
    assert hash_of(changed) != hash_of(payment())


def test_mappings_hash_ignores_verify_entries() -> None:
    with_verify = payment(verify=[{"request": {"method": "POST", "urlPath": "/charge"}}])
    assert hash_of(with_verify) == hash_of(payment())


def test_service_maps_stub_port_to_wiremock() -> None:
    service = objects(payment())["Service"]
    assert service["spec"]["selector"] == {LABEL_COMPONENT: "payment-gateway", LABEL_KIND: "stub"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 9090, "targetPort": WIREMOCK_PORT, "protocol": "TCP"}]


def test_stub_url_is_service_name_and_port() -> None:
    assert stub_url(payment()) == "http://payment-gateway:9090"
    assert stub_url(Stub(name="s")) == "http://s:8080"


# --- verification -------------------------------------------------------------


def test_count_request_body_is_the_request_pattern() -> None:
    assert count_request_body(verification()) == {"method": "POST", "urlPath": "/charge"}


def test_count_request_body_matches_any_method_when_unset() -> None:
    v = StubVerification.model_validate({"request": {"urlPathPattern": "/x/.*", "headers": {"A": {"equalTo": "1"}}}})
    assert count_request_body(v) == {"method": "ANY", "urlPathPattern": "/x/.*", "headers": {"A": {"equalTo": "1"}}}


@pytest.mark.parametrize("count", [1, 5])
def test_default_expects_at_least_one(count: int) -> None:
    assert judge(verification(), count) is None


def test_default_fails_on_no_requests() -> None:
    assert judge(verification(), 0) == "POST /charge: expected at least 1 request, got 0"


def test_empty_count_means_at_least_one() -> None:
    assert judge(verification({}), 0) == "POST /charge: expected at least 1 request, got 0"


def test_at_least_message_is_plural() -> None:
    assert judge(verification({"atLeast": 3}), 2) == "POST /charge: expected at least 3 requests, got 2"


def test_at_most() -> None:
    assert judge(verification({"atMost": 2}), 2) is None
    assert judge(verification({"atMost": 0}), 1) == "POST /charge: expected at most 0 requests, got 1"


def test_exactly() -> None:
    assert judge(verification({"exactly": 2}), 2) is None
    assert judge(verification({"exactly": 2}), 3) == "POST /charge: expected exactly 2 requests, got 3"
    assert judge(verification({"exactly": 1}), 0) == "POST /charge: expected exactly 1 request, got 0"


def test_range_names_both_bounds() -> None:
    v = verification({"atLeast": 1, "atMost": 3})
    assert judge(v, 2) is None
    assert judge(v, 4) == "POST /charge: expected at least 1 and at most 3 requests, got 4"


def test_message_names_any_method_and_pattern() -> None:
    v = StubVerification.model_validate({"request": {"urlPathPattern": "/charges/[0-9]+"}})
    assert judge(v, 0) == "ANY /charges/[0-9]+: expected at least 1 request, got 0"


def test_verification_status_all_passed() -> None:
    status = verification_status("payment-gateway", [(verification(), 1), (verification({"atMost": 1}), 0)])
    assert status.name == "stubs/payment-gateway"
    assert status.phase == JobPhase.SUCCEEDED
    assert (status.passed, status.failed, status.failures) == (2, 0, [])


def test_verification_status_lists_failures() -> None:
    status = verification_status("payment-gateway", [(verification(), 0), (verification({"exactly": 1}), 1)])
    assert status.phase == JobPhase.FAILED
    assert (status.passed, status.failed) == (1, 1)
    assert status.failures == ["POST /charge: expected at least 1 request, got 0"]
    assert status.message == "1 of 2 verifications failed"


def test_verification_status_without_verify_succeeds() -> None:
    status = verification_status("s", [])
    assert status.phase == JobPhase.SUCCEEDED
    assert (status.passed, status.failed) == (0, 0)


# --- the request journal in a failed verification's message -------------------


def _entry(method: str, url: str, status: int, matched: bool = True) -> dict:
    return {"request": {"method": method, "url": url}, "responseDefinition": {"status": status}, "wasMatched": matched}


def test_the_journal_lists_what_came_newest_first_with_the_answers() -> None:
    journal = {"requests": [_entry("GET", "/x", 404, matched=False), _entry("POST", "/v1/charges", 201)],
               "meta": {"total": 2}}
    assert describe_journal(journal) == (
        "the stub received 2 request(s), newest first: GET /x -> 404, unmatched; POST /v1/charges -> 201")


def test_an_empty_journal_says_nothing_came() -> None:
    assert describe_journal({"requests": [], "meta": {"total": 0}}) == "the stub received no requests at all"


def test_a_long_journal_says_how_much_is_shown_and_is_capped() -> None:
    entries = [_entry("POST", "/v1/" + "a" * 200, 200)] * JOURNAL_LIMIT
    line = describe_journal({"requests": entries, "meta": {"total": 500}})
    assert line.startswith(f"the stub received last {JOURNAL_LIMIT} of 500 request(s)")
    assert len(line) == MAX_JOURNAL_MESSAGE and line.endswith("...")


def test_an_unreadable_journal_is_said_so() -> None:
    assert describe_journal("<html>") == "the stub's request journal could not be read"


def test_a_failed_verification_carries_the_journal_and_a_passing_one_does_not_ask() -> None:
    stub = Stub.model_validate({"name": "mail", "verify": [{"request": {"method": "POST", "urlPath": "/send"}}]})
    asked: list[tuple[str, str]] = []

    def admin(counts: int):
        def request(method: str, path: str, body: dict | None) -> dict:
            asked.append((method, path))
            if path == COUNT_PATH:
                return {"count": counts}
            return {"requests": [_entry("POST", "/other", 404, matched=False)], "meta": {"total": 1}}
        return request

    assert verify_stub(admin(1), stub).message == "" and asked == [("POST", COUNT_PATH)]
    failed = verify_stub(admin(0), stub)
    assert failed.message == ("1 of 1 verifications failed; the stub received 1 request(s), newest first: "
                              "POST /other -> 404, unmatched")


def test_each_run_gets_a_fresh_stub_pod_so_verify_counts_only_its_own_requests() -> None:
    stub = Stub.model_validate({"name": "mail", "mappings": [{"request": {"urlPath": "/send"}}]})

    def template(run: int) -> dict:
        [deployment] = [o for o in stub_objects(stub, ENV, "wiremock:3", run=run) if o["kind"] == "Deployment"]
        return deployment["spec"]["template"]

    assert template(1)["metadata"]["annotations"]["testenv.dev/run"] == "1"
    assert template(2) != template(1)
    assert template(2)["spec"] == template(1)["spec"]
