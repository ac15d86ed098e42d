"""The house rules, run by `make test` (and so by CI): the import contracts
(import-linter), the type checks (mypy) and the lint rules (ruff), each
configured in pyproject.toml. A failure shows the tool's own report: for a
contract, its name and the import chain that breaks it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "testenv"
PYPROJECT = ROOT / "pyproject.toml"


def _tool(name: str) -> str:
    """The console script installed beside this Python (the `test` extra), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `pip install -e '.[test]'`")
    return found


def _run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def _flat(text: str) -> str:
    """Contract names may wrap in import-linter's report."""
    return re.sub(r"\s+", " ", text)


def _contract_names() -> list[str]:
    config = tomllib.loads(PYPROJECT.read_text())
    return [c["name"] for c in config["tool"]["importlinter"]["contracts"]]


def test_import_contracts_are_kept() -> None:
    result = _run(_tool("lint-imports"), "--no-cache", "--config", str(PYPROJECT))
    assert result.returncode == 0, _report(result)
    report = _flat(result.stdout)
    for name in _contract_names():
        assert f"{name} KEPT" in report, _report(result)


def test_a_broken_contract_fails_with_its_name(tmp_path: Path) -> None:
    """The contracts are live: a copy of the package with the planner
    importing the Kubernetes client and the models importing the planner
    breaks exactly the two contracts that forbid that."""
    copy = tmp_path / "testenv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "plan.py").open("a") as plan:
        plan.write("\nfrom kubernetes import client as _client  # noqa: E402\n")
    with (copy / "models.py").open("a") as models:
        models.write("\nfrom .plan import Admission as _Admission  # noqa: E402\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(_tool("lint-imports"), "--no-cache", "--config", str(PYPROJECT), env=env)
    report = _flat(result.stdout)
    assert result.returncode != 0, _report(result)
    assert "Layers of the operator, as the README draws them BROKEN" in report, _report(result)
    assert "Pure core imports no kopf, kubernetes, httpx, urllib3, prometheus_client, boto3 BROKEN" in report, \
        _report(result)
    assert "testenv.models -> testenv.plan" in report and "testenv.plan -> kubernetes" in report, _report(result)
    assert f"Contracts: {len(_contract_names()) - 2} kept, 2 broken." in report, _report(result)


def test_types_check() -> None:
    result = _run(sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT))
    assert result.returncode == 0, _report(result)


def test_the_pure_core_is_checked_strictly_and_the_rest_not(tmp_path: Path) -> None:
    """The same loosely typed helper is an error in the planner (strict) and
    accepted in kube.py (checked, not strict)."""
    copy = tmp_path / "testenv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    helper = "\n\ndef _loose(x: dict) -> dict:\n    return x\n"
    for module in ("plan.py", "kube.py"):
        with (copy / module).open("a") as source:
            source.write(helper)
    result = _run(sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
                  "--cache-dir", str(tmp_path / "cache"), str(copy))
    assert result.returncode != 0, _report(result)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert any("plan.py" in e and "[type-arg]" in e for e in errors), _report(result)
    assert not any("kube.py" in e for e in errors), _report(result)


def test_lint_rules_hold() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, _report(result)
