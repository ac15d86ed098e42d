"""The house rules, run by `make test` (and so by CI): the import contracts
(import-linter), the type checks (mypy) and the lint rules (ruff), each
configured in pyproject.toml. A failure shows the tool's own report: for a
contract, its name and the import chain that breaks it."""

from __future__ import annotations

import ast
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
    """The package as it is in this tree, not as an install left it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    result = _run(_tool("lint-imports"), "--no-cache", str(PYPROJECT), env=env)
    assert result.returncode == 0, _report(result)
    report = _flat(result.stdout)
    for name in _contract_names():
        assert f"{name} KEPT" in report, _report(result)


def test_a_broken_contract_fails_with_its_name(tmp_path: Path) -> None:
    """The contracts are live: a copy of the package with the planner
    importing the Kubernetes client and the models importing the planner
    breaks exactly the three contracts that forbid that (the layers, the pure
    core, and the modules allowed the Kubernetes client)."""
    copy = tmp_path / "testenv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "plan.py").open("a") as plan:
        plan.write("\nfrom kubernetes import client as _client  # noqa: E402\n")
    with (copy / "models.py").open("a") as models:
        models.write("\nfrom .plan import Admission as _Admission  # noqa: E402\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(_tool("lint-imports"), "--no-cache", str(PYPROJECT), env=env)
    report = _flat(result.stdout)
    assert result.returncode != 0, _report(result)
    assert "Layers of the operator, as the README draws them BROKEN" in report, _report(result)
    assert "Pure core imports no kopf, kubernetes, httpx, urllib3, prometheus_client, boto3 BROKEN" in report, \
        _report(result)
    assert "kubernetes only in kube, stubaccess, cli.cluster, reconcile, harvest, resultstore BROKEN" in report, \
        _report(result)
    assert "testenv.models -> testenv.plan" in report and "testenv.plan -> kubernetes" in report, _report(result)
    assert f"Contracts: {len(_contract_names()) - 3} kept, 3 broken." in report, _report(result)


def test_an_adapter_library_imported_by_a_module_not_named_breaks_its_contract(tmp_path: Path) -> None:
    """Each I/O library lists the modules allowed it, so modules no contract
    names (harvest, cli.fetch, a new one) are held to it as well."""
    copy = tmp_path / "testenv"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for module, library in (("harvest.py", "httpx"), ("cli/fetch.py", "kubernetes"), ("metrics.py", "boto3"),
                            ("sweep.py", "kopf"), ("resultstore.py", "prometheus_client")):
        with (copy / module).open("a") as source:
            source.write(f"\nimport {library} as _library  # noqa: E402\n")
    (copy / "new_adapter.py").write_text("import httpx as _library\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(_tool("lint-imports"), "--no-cache", str(PYPROJECT), env=env)
    report = _flat(result.stdout)
    assert result.returncode != 0, _report(result)
    for broken, chain in (
        ("httpx and urllib3 only in stubaccess, cli.cluster and kube", "testenv.harvest -> httpx"),
        ("kubernetes only in kube, stubaccess, cli.cluster, reconcile, harvest, resultstore",
         "testenv.cli.fetch -> kubernetes"),
        ("boto3 and botocore only in s3store", "testenv.metrics -> boto3"),
        ("kopf only at the edge: __main__, handlers and relist", "testenv.sweep -> kopf"),
        ("prometheus_client only in metrics", "testenv.resultstore -> prometheus_client"),
    ):
        assert f"{broken} BROKEN" in report and chain in report, _report(result)
    assert "testenv.new_adapter -> httpx" in report, _report(result)


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


# --- identities by keyword ---------------------------------------------------------

# Strings of one kind: two of them side by side are easily swapped, and a swap
# type-checks. They are passed by keyword, namespace before name (issue #18).
IDENTITIES = frozenset({"name", "namespace", "uid", "pod", "container", "job", "target"})
KOPF_HANDLERS = ("kopf.on.", "kopf.daemon", "kopf.index", "kopf.timer")


def _kopf_handler(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """kopf passes a handler everything by keyword."""
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target).startswith(KOPF_HANDLERS):
            return True
    return False


def _positional_parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in function.args.posonlyargs + function.args.args if a.arg not in ("self", "cls")]


def _dataclass_keyword_only(cls: ast.ClassDef) -> bool | None:
    """None when `cls` is no dataclass; else whether all its fields are keyword-only."""
    for decorator in cls.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target) not in ("dataclass", "dataclasses.dataclass"):
            continue
        return isinstance(decorator, ast.Call) and any(
            k.arg == "kw_only" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in decorator.keywords)
    return None


def _positional_fields(cls: ast.ClassDef) -> list[str]:
    """The fields before a `_: KW_ONLY` marker, less those declared field(kw_only=True)."""
    fields = []
    for statement in cls.body:
        if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
            continue
        if ast.unparse(statement.annotation) in ("KW_ONLY", "dataclasses.KW_ONLY"):
            break
        value = statement.value
        if isinstance(value, ast.Call) and ast.unparse(value.func) in ("field", "dataclasses.field") and any(
                k.arg == "kw_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in value.keywords):
            continue
        fields.append(statement.target.id)
    return fields


def _identities_passed_by_position(source: str, where: str) -> list[str]:
    found: list[str] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                identities = [p for p in _positional_parameters(child) if p in IDENTITIES]
                if len(identities) >= 2 and not _kopf_handler(child):
                    found.append(f"{where}:{child.lineno} function {scope}{child.name}() takes "
                                 f"{', '.join(identities)} by position")
                visit(child, f"{scope}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                if _dataclass_keyword_only(child) is False:
                    identities = [f for f in _positional_fields(child) if f in IDENTITIES]
                    if len(identities) >= 2:
                        found.append(f"{where}:{child.lineno} dataclass {scope}{child.name} takes "
                                     f"{', '.join(identities)} by position (make it kw_only)")
                visit(child, f"{scope}{child.name}.")
            else:
                visit(child, scope)

    visit(ast.parse(source), "")
    return found


def test_identities_are_passed_by_keyword() -> None:
    """No function or dataclass of the operator takes two of name, namespace,
    uid, pod, container, job or target by position: a swap would go unseen.
    Make them keyword-only (after `*`, or kw_only=True), namespace first."""
    found = []
    for module in sorted(PACKAGE.rglob("*.py")):
        found += _identities_passed_by_position(module.read_text(), str(module.relative_to(ROOT)))
    assert not found, "identities by keyword (issue #18):\n" + "\n".join(found)


def test_the_identity_check_sees_positional_identities() -> None:
    source = """
import kopf
from dataclasses import KW_ONLY, dataclass, field

def swapped(name, namespace): ...
def fine(name, *, namespace): ...
class Client:
    def read(self, namespace, pod, container=None): ...
    def fine(self, namespace, *, pod): ...
@kopf.on.create("testenvironments")
def handler(name, namespace, **_): ...
@dataclass(frozen=True)
class Ref:
    namespace: str
    name: str
@dataclass(frozen=True, kw_only=True)
class FineRef:
    namespace: str
    name: str
@dataclass
class Marked:
    reason: str
    _: KW_ONLY
    pod: str
    container: str
@dataclass
class PerField:
    pod: str
    container: str = field(default="", kw_only=True)
"""
    found = _identities_passed_by_position(source, "m.py")
    assert [line.split(" ", 1)[1] for line in found] == [
        "function swapped() takes name, namespace by position",
        "function Client.read() takes namespace, pod, container by position",
        "dataclass Ref takes namespace, name by position (make it kw_only)",
    ]
