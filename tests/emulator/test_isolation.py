"""The emulator is a second implementation: it imports nothing from the rest of sectigo_svc."""

from __future__ import annotations

import ast
from pathlib import Path

import sectigo_svc.emulator

PACKAGE = "sectigo_svc.emulator"
EMULATOR_DIR = Path(sectigo_svc.emulator.__file__).resolve().parent
IMPORT_FUNCTIONS = {"import_module", "__import__"}


def module_name(path: Path) -> str:
    relative = path.relative_to(EMULATOR_DIR).with_suffix("")
    parts = [p for p in relative.parts if p != "__init__"]
    return ".".join([PACKAGE, *parts])


def resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names, relative imports included."""
    if node.level == 0:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    assert len(base) >= 1, f"{path}: relative import climbs out of the package"
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append(resolve(path, node))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in IMPORT_FUNCTIONS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.append(first.value)
    return found


def offends(module: str) -> bool:
    inside = module == PACKAGE or module.startswith(f"{PACKAGE}.")
    return (module == "sectigo_svc" or module.startswith("sectigo_svc.")) and not inside


def test_scanner_catches_outside_imports(tmp_path: Path) -> None:
    """The scanner itself works: it flags absolute and relative escapes, passes inside ones."""
    assert offends("sectigo_svc.sectigo.client")
    assert offends("sectigo_svc")
    assert not offends("sectigo_svc.emulator.faults")
    assert not offends("requests")
    route_file = EMULATOR_DIR / "routes" / "auth.py"
    escape = ast.parse("from ...sectigo import client").body[0]
    inside = ast.parse("from ..faults import FaultRule").body[0]
    assert isinstance(escape, ast.ImportFrom) and isinstance(inside, ast.ImportFrom)
    assert resolve(route_file, escape) == "sectigo_svc.sectigo"
    assert resolve(route_file, inside) == "sectigo_svc.emulator.faults"


def test_emulator_imports_nothing_outside_itself() -> None:
    files = sorted(EMULATOR_DIR.rglob("*.py"))
    names = {p.relative_to(EMULATOR_DIR).as_posix() for p in files}
    assert {"__init__.py", "server.py", "config.py", "faults.py"} <= names
    offences = [
        f"{path.relative_to(EMULATOR_DIR)}: {module}"
        for path in files
        for module in imported_modules(path)
        if offends(module)
    ]
    assert offences == []
