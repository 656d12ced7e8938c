"""Nothing in the client distribution imports the server: every module of the packages that
clients/pyproject.toml ships imports only the standard library, its declared dependencies
(grpc, google.protobuf, cryptography; click only in the command's modules) and itself."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tests.distribution.conftest import CLIENTS

OWN = frozenset({"sectigo", "sectigo_client"})
DEPENDENCIES = frozenset({"grpc", "google.protobuf", "cryptography"})
# The command's modules: importing click is theirs alone (the `cli` extra).
COMMAND_MODULES = frozenset({"cli", "cli_issue", "cli_output", "cli_session"})
FORBIDDEN = ("sectigo_svc", "sectigo_admin")


def shipped_packages() -> list[str]:
    """The top-level packages the client distribution's pyproject includes."""
    config = tomllib.loads((CLIENTS / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.split(".")[0] for pattern in include})


def imports(path: Path) -> Iterator[str]:
    """The absolute module names ``path`` imports (relative imports are of its own package)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def allowed(module: str, importer: Path) -> bool:
    top = module.split(".", maxsplit=1)[0]
    if top in OWN or top in sys.stdlib_module_names:
        return True
    if top == "click":
        return importer.stem in COMMAND_MODULES
    return any(module == d or module.startswith(f"{d}.") for d in DEPENDENCIES)


def test_the_shipped_packages_are_the_client_ones() -> None:
    assert shipped_packages() == sorted(OWN)


def test_nothing_shipped_imports_the_server_or_undeclared_packages() -> None:
    files = [p for package in shipped_packages() for p in (CLIENTS / package).rglob("*.py")]
    assert len(files) > 10
    wrong = sorted(
        f"{path.relative_to(CLIENTS)}: {module}"
        for path in files
        for module in imports(path)
        if not allowed(module, path)
    )
    assert wrong == []


def test_the_check_refuses_server_and_undeclared_imports() -> None:
    library = CLIENTS / "sectigo_client" / "client.py"
    for module in (*FORBIDDEN, "sectigo_svc.domain.errors", "structlog", "grpc_status", "click"):
        assert not allowed(module, library), module
    assert allowed("click", CLIENTS / "sectigo_client" / "cli.py")
    assert allowed("google.protobuf.message", library)
    assert not allowed("google.rpc.status_pb2", library)
