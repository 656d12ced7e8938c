"""The Sectigo client stands alone: no gRPC, no request store, no emulator, no domain imports."""

from __future__ import annotations

import ast
from pathlib import Path

import sectigo_svc.sectigo

PACKAGE = Path(sectigo_svc.sectigo.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_client_imports_nothing_from_the_rest_of_the_service() -> None:
    offending = {}
    for path in sorted(PACKAGE.glob("*.py")):
        bad = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] in ("grpc", "grpc_health", "grpc_reflection")
            or (
                name.startswith("sectigo_svc")
                and name != "sectigo_svc"
                and not name.startswith("sectigo_svc.sectigo")
            )
        }
        if bad:
            offending[path.name] = sorted(bad)
    assert offending == {}


def test_every_module_stays_under_400_lines() -> None:
    long = {
        p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text().splitlines())) >= 400
    }
    assert long == {}
