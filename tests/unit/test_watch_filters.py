"""What kopf watches and keeps: the watches are filtered by the API server
(only our children and only Warning Events not about TestEnvironments reach
the operator) and no
handler is starved by a filter narrower than its own; no last-handled state
is kept, so no handler may need a diff."""

from __future__ import annotations

import kopf
from kopf._cogs.structs.references import Resource
from testenv import handlers
from testenv.build.common import LABEL_MANAGED_BY, MANAGED_BY


def _filtered() -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    handlers.filter_watches(settings)
    return settings


def _handlers() -> list:
    registry = kopf.get_default_registry()
    return [*registry._indexing.get_all_handlers(), *registry._watching.get_all_handlers()]


def test_watches_of_our_children_ask_the_api_server_for_our_label_only() -> None:
    settings = _filtered()
    for group, version, plural in (handlers.DEPLOYMENTS, handlers.JOBS, handlers.NAMESPACES, handlers.PODS):
        selectors = list(settings.watching.label_selectors.collect(Resource(group, version, plural)))
        assert selectors == [f"{LABEL_MANAGED_BY}={MANAGED_BY}"], plural


def test_the_events_watch_asks_for_warnings_not_about_what_the_operator_posts_on() -> None:
    settings = _filtered()
    assert list(settings.watching.field_selectors.collect(Resource("", "v1", "events"))) == [
        "type=Warning,involvedObject.kind!=TestEnvironment,involvedObject.kind!=Namespace"]
    # The events.k8s.io API is not watched, and must not be caught by the core one's filter.
    assert not list(settings.watching.field_selectors.collect(Resource("events.k8s.io", "v1", "events")))


def test_test_environments_are_watched_unfiltered() -> None:
    settings = _filtered()
    resource = Resource(*handlers.TE)
    assert not list(settings.watching.label_selectors.collect(resource))
    assert not list(settings.watching.field_selectors.collect(resource))


def test_every_handler_of_a_label_filtered_watch_wants_only_labelled_objects() -> None:
    """A handler without the label filter on a resource whose watch has it
    would never see the objects it is written for."""
    settings = _filtered()
    for handler in _handlers():
        resource = Resource(handler.selector.group or "", handler.selector.version or "v1",
                            handler.selector.any_name or "")
        for selector in settings.watching.label_selectors.collect(resource):
            key, value = selector.split("=")
            assert (handler.labels or {}).get(key) == value, f"{handler.id} on {resource.plural}"


def test_every_handler_of_the_events_watch_wants_warnings_only() -> None:
    """observe.slim_event keeps Warnings only: the field filter hides nothing a handler uses."""
    from testenv.observe import slim_event

    normal = {"type": "Normal", "reason": "BackOff", "metadata": {"name": "e", "namespace": "te-x"}}
    assert slim_event(normal) is None
    events = [h for h in _handlers() if h.selector.any_name == "events"]
    assert {h.id for h in events} == {"events_by_namespace", "wake_on_warning"}


def test_no_handler_needs_the_last_handled_state_the_operator_does_not_keep() -> None:
    """handlers.NoDiffBase keeps no diff base: kopf then never sees a creation
    or an update, so only deletion handlers may react to changes."""
    registry = kopf.get_default_registry()
    changing = registry._changing.get_all_handlers()
    assert [(h.id, h.reason, h.field) for h in changing] == [("collect_on_delete", "delete", None)]
    settings = kopf.OperatorSettings()
    handlers.configure_persistence(settings)
    assert isinstance(settings.persistence.diffbase_storage, handlers.NoDiffBase)
    body = kopf.Body({"metadata": {"name": "e", "annotations": {}}, "spec": {"a": 1}})
    storage = settings.persistence.diffbase_storage
    assert storage.fetch(body=body) == storage.build(body=body) == {}


def test_the_operator_rides_out_an_api_server_restart_of_minutes() -> None:
    """kopf's own retries (55 s in all) let an operator started during the
    soak's 240 s control-plane restart exit; a pause after any failure
    stays short enough to resume soon after the API server is back."""
    backoffs = handlers.API_ERROR_BACKOFFS
    assert sum(backoffs) >= 240 + 30 and max(backoffs) <= 30
