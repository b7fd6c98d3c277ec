"""The layout's promise, checked on every module's imports: imports only run downward.

tools → supervisor → worker → shared.store / shared.kucoin → shared contracts; the simulator
reads only the contracts and KuCoin's constants, so it stays an oracle the client cannot fool.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tools", "supervisor", "worker", "shared", "sim", "bench")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _allowed(importer: str, imported: str) -> bool:
    top = imported.split(".")[0]
    if importer == "tools" or importer == "bench":
        return top != "bench" or importer == "bench"
    if importer == "supervisor":
        if top == "worker":
            return imported.split(".")[:2] in (["worker", "entry"], ["worker", "inline"])
        return top in ("supervisor", "shared")
    if importer == "worker":
        return top in ("worker", "shared")
    if importer == "shared":
        return top == "shared"
    if importer == "sim":
        readable = ("shared.money", "shared.credentials", "shared.runloop", "shared.kucoin.constants")
        return top == "sim" or imported == "shared.kucoin" or any(
            imported == module or imported.startswith(module + ".") for module in readable)
    raise AssertionError(importer)


@pytest.mark.parametrize("package", ["supervisor", "worker", "shared", "sim", "tools"])
def test_imports_only_run_downward(package: str) -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for path in _modules(package)
             for name in sorted(_imports(path)) if not _allowed(package, name)]
    assert wrong == []


def test_shared_contracts_do_not_reach_into_the_store_or_the_exchange() -> None:
    contracts = [p for p in _modules("shared") if p.parent == ROOT / "shared"]
    wrong = [f"{path.name} imports {name}" for path in contracts for name in sorted(_imports(path))
             if name.startswith(("shared.store", "shared.kucoin"))]
    assert wrong == []


def test_the_layer_check_sees_a_violation() -> None:
    assert not _allowed("sim", "shared.kucoin.auth") and not _allowed("supervisor", "worker.executor")
    assert not _allowed("worker", "supervisor.app") and _allowed("supervisor", "worker.entry")
