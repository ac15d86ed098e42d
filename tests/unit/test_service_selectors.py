"""A Service sends traffic to its component's pods only: a seed or suite may
carry the same name (names are unique per kind, not across kinds), and its
pods must never become the Service's endpoints. Found on the real node: a
suite named `cache` received half of the `cache` datastore's connections."""

from __future__ import annotations

from typing import Any

import pytest
from testenv.build.common import EnvRef
from testenv.build.datastores import datastore_objects
from testenv.build.jobs import suite_job
from testenv.build.seeds import seed_objects
from testenv.build.services import image_service_objects
from testenv.build.stubs import stub_objects
from testenv.models import Datastore, Seed, Service, Stub, TestSuite

ENV = EnvRef(name="pr-1", namespace="ci", uid="uid-1", target_namespace="te-pr-1-abcde")


def _of(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


COMPONENTS = {
    "datastore": lambda: datastore_objects(Datastore(name="cache", engine="redis"), ENV, "redis:7"),
    "stub": lambda: stub_objects(Stub(name="cache"), ENV, "wiremock:3"),
    "service": lambda: image_service_objects(
        Service(name="cache", image="svc:1", ports=[{"port": 80}]), ENV, []),
}


@pytest.mark.parametrize("kind", COMPONENTS)
def test_service_selects_its_components_pods_and_not_a_suite_or_seed_of_the_same_name(kind):
    objects = COMPONENTS[kind]()
    selector = _of(objects, "Service")["spec"]["selector"]
    template_labels = _of(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    suite_labels = suite_job(TestSuite(name="cache", image="t:1"), ENV, 1, [])["spec"]["template"]["metadata"]["labels"]
    seed = Seed(name="cache", image="s:1")
    seed_labels = _of(seed_objects(seed, None, ENV, "s:1", 1, []), "Job")["spec"]["template"]["metadata"]["labels"]

    assert _selects(selector, template_labels)
    assert not _selects(selector, suite_labels)
    assert not _selects(selector, seed_labels)
