"""Which kubeconfig and context the CLI uses, and what it says when it cannot."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from testenv.cli.cluster import CliError, connect


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
