"""Which kubeconfig and context the CLI uses, and what it says when it cannot;
how TestEnvironment calls turn API failures into answers or errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import urllib3
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from testenv import models
from testenv.cli.cluster import CliError, Connection, Environments, connect


def kubeconfig(path: Path, server: str, namespace: str | None = None, contexts: tuple[str, ...] = ("dev",)) -> str:
    context = {"cluster": "c", "user": "u"} | ({"namespace": namespace} if namespace else {})
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "contexts": [{"name": name, "context": context} for name in contexts],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))
    return str(path)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_the_flag_wins_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "env", "https://from-env:6443"))
    connection = connect(kubeconfig(tmp_path / "flag", "https://from-flag:6443"))
    assert connection.server == "https://from-flag:6443"
    assert connection.source == f"context dev from --kubeconfig {tmp_path / 'flag'}"


def test_kubeconfig_variable_is_used_and_may_list_several_files(monkeypatch, tmp_path):
    first = kubeconfig(tmp_path / "a", "https://a:6443", namespace="team-a")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{first}")
    connection = connect()
    assert connection.server == "https://a:6443"
    assert connection.namespace == "team-a"


def test_the_default_file_is_the_last_resort(tmp_path):
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    kubeconfig(tmp_path / "home" / ".kube" / "config", "https://home:6443")
    connection = connect()
    assert connection.server == "https://home:6443" and connection.namespace == "default"


def test_a_context_can_be_chosen(tmp_path):
    path = kubeconfig(tmp_path / "kc", "https://x:6443", contexts=("dev", "prod"))
    assert "context prod" in connect(path, context="prod").source


def test_an_unknown_context_lists_the_known_ones(tmp_path):
    path = kubeconfig(tmp_path / "kc", "https://x:6443", contexts=("dev", "prod"))
    with pytest.raises(CliError, match=r"context 'stage' is not in .* \(contexts: dev, prod\)"):
        connect(path, context="stage")


def test_no_kubeconfig_at_all_says_what_was_tried(tmp_path):
    with pytest.raises(CliError, match=r"the default kubeconfig ~/\.kube/config does not exist") as caught:
        connect()
    assert "KUBECONFIG" in caught.value.message and caught.value.code == 2


def test_a_broken_kubeconfig_is_named(tmp_path):
    path = tmp_path / "kc"
    path.write_text("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\n")
    with pytest.raises(CliError, match=f"cannot use --kubeconfig {path}"):
        connect(str(path))


# --- Environments: absent objects, a missing API, an unreachable server --------------------


def _raise(exc: BaseException):
    def call(*args, **kwargs):
        raise exc

    return call


def _return(value):
    return lambda *args, **kwargs: value


def environments(monkeypatch, failure: BaseException | None, api_installed: bool = True) -> Environments:
    """Environments whose get and delete fail with `failure` (or succeed), on a
    cluster where the TestEnvironment API is or is not installed."""
    connection = Connection(
        client.ApiClient(client.Configuration()),
        "context dev from --kubeconfig kc",
        "https://x:6443",
        "default",
        "`kubectl cluster-info`",
    )
    envs = Environments(connection)
    answers = {
        "get_namespaced_custom_object": {"metadata": {"name": "pr-1", "namespace": "ci"}},
        "delete_namespaced_custom_object": {"kind": "Status", "status": "Success"},
        "list_namespaced_custom_object": {"items": []},
    }
    for method, answer in answers.items():
        monkeypatch.setattr(envs.custom, method, _raise(failure) if failure else _return(answer))
    resources = SimpleNamespace(resources=[SimpleNamespace(name=models.PLURAL)])
    not_found = ApiException(status=404, reason="Not Found")
    monkeypatch.setattr(envs.custom, "get_api_resources", _return(resources) if api_installed else _raise(not_found))
    return envs


def test_get_and_delete_of_a_present_object(monkeypatch):
    envs = environments(monkeypatch, None)
    assert envs.get(namespace="ci", name="pr-1") == {"metadata": {"name": "pr-1", "namespace": "ci"}}
    assert envs.delete(namespace="ci", name="pr-1") is True


def test_an_absent_object_is_none_to_get_and_false_to_delete(monkeypatch):
    envs = environments(monkeypatch, ApiException(status=404, reason="Not Found"))
    assert envs.get(namespace="ci", name="pr-1") is None
    assert envs.delete(namespace="ci", name="pr-1") is False


def test_a_404_elsewhere_is_still_an_error(monkeypatch):
    envs = environments(monkeypatch, ApiException(status=404, reason="Not Found"))
    with pytest.raises(CliError, match=r"cannot list testenvironments: 404 Not Found \(does namespace ci exist\?\)"):
        envs.list("ci")


@pytest.mark.parametrize("call", ["get", "delete"])
def test_a_missing_api_says_how_to_install_it(monkeypatch, call):
    envs = environments(monkeypatch, ApiException(status=404, reason="Not Found"), api_installed=False)
    not_installed = r"the TestEnvironment API \(testenvironments\.testenv\.dev/v1alpha1\) is not installed in the"
    with pytest.raises(CliError, match=not_installed) as caught:
        getattr(envs, call)(namespace="ci", name="pr-1")
    assert "kubectl apply --server-side -f crds/" in caught.value.message


@pytest.mark.parametrize("call", ["get", "delete"])
def test_an_unreachable_server_is_named(monkeypatch, call):
    refused = urllib3.exceptions.MaxRetryError(None, "/apis", reason=ConnectionRefusedError("Connection refused"))
    envs = environments(monkeypatch, refused)
    with pytest.raises(CliError, match=r"cannot reach the Kubernetes API at https://x:6443: connection refused"):
        getattr(envs, call)(namespace="ci", name="pr-1")


@pytest.mark.parametrize(("call", "verb"), [("get", "read"), ("delete", "delete")])
def test_forbidden_names_the_action_and_namespace(monkeypatch, call, verb):
    envs = environments(monkeypatch, ApiException(status=403, reason="Forbidden"))
    with pytest.raises(CliError, match=f"not allowed to {verb} testenvironment pr-1 in namespace ci: 403 Forbidden"):
        getattr(envs, call)(namespace="ci", name="pr-1")
