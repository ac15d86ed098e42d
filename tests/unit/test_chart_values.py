"""The Helm chart's values against the operator they configure: no cluster, no helm."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from testenv import metrics
from testenv.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "testenv-operator"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())

# Settings the chart derives instead of taking from `config`.
DERIVED = {
    "operator_namespace",  # always the release namespace
    "collector_image",  # always the operator's own image
    # from the Secret resultsS3CredentialsSecret names
    "results_s3_access_key_id",
    "results_s3_secret_access_key",
}


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(word.capitalize() for word in rest)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Values as Helm merges them: maps key by key, everything else replaced."""
    out = dict(base)
    for key, value in over.items():
        both_maps = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merged(base[key], value) if both_maps else value
    return out


def plain(value: Any) -> Any:
    """A setting's default in the shape values.yaml writes it."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


def _sync_chart_crds(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "hack" / "sync-chart-crds.sh"), *args],
                          capture_output=True, text=True, timeout=60)


def test_chart_ships_the_generated_crd_as_its_template() -> None:
    result = _sync_chart_crds("--check")
    assert result.returncode == 0, f"{result.stderr}the chart's CRD template is stale: run hack/sync-chart-crds.sh"
    template = (CHART / "templates" / "crds" / "testenvironment.yaml").read_text()
    generated = (ROOT / "crds" / "testenvironment.yaml").read_text()
    spec = generated[generated.index("\nspec:\n"):]
    assert spec in template, "the template carries the generated spec byte for byte"
    assert "helm.sh/resource-policy: keep" in template
    assert not (CHART / "crds" / "testenvironment.yaml").exists(), "Helm would install it once and never upgrade it"


def test_a_crd_changed_since_the_template_was_made_is_reported(tmp_path: Path) -> None:
    changed = tmp_path / "crds"
    changed.mkdir()
    text = (ROOT / "crds" / "testenvironment.yaml").read_text()
    (changed / "testenvironment.yaml").write_text(text.replace("scope: Namespaced", "scope: Cluster", 1))
    result = _sync_chart_crds("--check", "--crds", str(changed))
    assert result.returncode == 1
    assert "chart CRD template out of date: charts/testenv-operator/templates/crds/testenvironment.yaml" in result.stderr


def test_template_braces_in_a_generated_crd_are_refused(tmp_path: Path) -> None:
    crds, chart = tmp_path / "crds", tmp_path / "chart"
    crds.mkdir()
    text = (ROOT / "crds" / "testenvironment.yaml").read_text()
    (crds / "testenvironment.yaml").write_text(text.replace("scope: Namespaced", "scope: Namespaced  # {{ oops }}", 1))
    result = _sync_chart_crds("--crds", str(crds), "--chart", str(chart))
    assert result.returncode != 0
    assert "braces would be read as a template" in result.stderr


def test_every_operator_setting_is_a_chart_value() -> None:
    settings = {camel(name) for name in Settings.model_fields} - {camel(name) for name in DERIVED}
    assert set(VALUES["config"]) == settings


@pytest.mark.parametrize("name", sorted(set(Settings.model_fields) - DERIVED))
def test_chart_defaults_are_the_operators_defaults(name: str) -> None:
    default = plain(Settings.model_fields[name].get_default(call_default_factory=True))
    assert VALUES["config"][camel(name)] == default


def test_every_config_value_is_typed_by_the_schema() -> None:
    config = SCHEMA["properties"]["config"]
    assert config["additionalProperties"] is False
    assert set(config["properties"]) == set(VALUES["config"])


def test_schema_types_every_top_level_value_and_nothing_else() -> None:
    assert SCHEMA["additionalProperties"] is False
    assert set(SCHEMA["properties"]) == set(VALUES)


def test_default_values_satisfy_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(VALUES, SCHEMA)


def test_ci_values_satisfy_the_schema() -> None:
    paths = sorted((CHART / "ci").glob("*-values.yaml"))
    assert paths
    for path in paths:
        jsonschema.validate(merged(VALUES, yaml.safe_load(path.read_text())), SCHEMA)


@pytest.mark.parametrize(
    "bad",
    [
        {"replicaCount": "two"},
        {"unknownKey": True},
        {"config": {"podSecurityLevel": "lax"}},
        {"config": {"engineImages": {"oracle": "oracle:23"}}},
        {"config": {"maxActiveEnvironments": -1}},
        {"config": {"defaultQuotaMemory": "eight gigs"}},
        {"config": {"copyAllowlist": ["Not_A_Namespace"]}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"config": {"podNodeSelector": {"pool": 1}}},
        {"config": {"podTolerations": [{"key": "dedicated", "operator": "Sometimes"}]}},
        {"config": {"podTolerations": [{"key": "dedicated", "effect": "NoWay"}]}},
        {"config": {"podTolerations": [{"key": "dedicated", "tolerance": "high"}]}},
        {"config": {"imagePullSecrets": [{"name": "regcred"}]}},
        {"config": {"imagePullSecrets": ["Not_A_Secret"]}},
        # Kept longer than the week a download link can live, a bucket's results could not be fetched.
        {"config": {"resultsStore": "s3", "resultsRetentionSeconds": 8 * 86400}},
    ],
)
def test_schema_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merged(VALUES, bad), SCHEMA)


def test_every_value_is_documented_by_a_comment_above_it() -> None:
    undocumented = []
    previous = ""
    for number, line in enumerate((CHART / "values.yaml").read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if re.match(r"^\s*[A-Za-z_][\w.-]*:", line) and not previous.startswith("#"):
            undocumented.append(f"values.yaml:{number}: {stripped}")
        previous = stripped
    assert not undocumented, "\n".join(undocumented)


def test_dashboard_charts_every_operator_metric() -> None:
    dashboard = json.loads((CHART / "dashboards" / "testenv.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    names = {m._name for m in vars(metrics).values() if isinstance(m, (Counter, Gauge, Histogram))}
    assert names, "no metrics found in testenv.metrics"
    missing = {name for name in names if name not in exprs}
    assert not missing, f"the dashboard does not chart {sorted(missing)}"


def test_chart_app_version_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]


def test_default_image_is_the_one_the_dockerfile_documents() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert f"{VALUES['image']['repository']}:{chart['appVersion']}" in dockerfile


def test_a_long_retention_is_fine_for_configmaps_and_a_week_for_a_bucket() -> None:
    jsonschema.validate(merged(VALUES, {"config": {"resultsRetentionSeconds": 30 * 86400}}), SCHEMA)
    jsonschema.validate(merged(VALUES, {"config": {"resultsStore": "s3", "resultsRetentionSeconds": 7 * 86400}}),
                        SCHEMA)
