"""The house's layering, read from the source with `ast` (nothing is imported): the core in
`kuma/` outside `kuma/edge/` imports no framework, and no service imports another."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parents[2]

# Servers, RPC, CLI and browser frameworks: they belong at the edge (kuma/edge/, services/, cli/).
FRAMEWORKS = frozenset(
    {
        "flask",
        "werkzeug",
        "grpc",
        "gunicorn",
        "nameko",
        "waitress",
        "cheroot",
        "click",
        "kombu",
        "eventlet",
        "selenium",
    }
)
# `kuma-cp run` wires every service into one process: its composition root may import them all.
COMPOSITION_ROOTS = frozenset({"cp"})


def imported_modules(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, at any depth (lazy imports in
    functions and `TYPE_CHECKING` blocks count too); relative imports are resolved."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base
            if not node.module:  # `from . import x`: x is a module of that package
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}"


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "proto" not in p.relative_to(folder).parts)


def framework_imports(root: Path) -> list[str]:
    found = []
    core = root / "kuma"
    for path in _sources(core):
        if path.is_relative_to(core / "edge"):
            continue
        for line, module in imported_modules(root, path):
            if module.split(".")[0] in FRAMEWORKS:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def cross_service_imports(root: Path) -> list[str]:
    found = []
    services = root / "services"
    for folder in sorted(p for p in services.iterdir() if (p / "__init__.py").exists()):
        if folder.name in COMPOSITION_ROOTS:
            continue
        for path in _sources(folder):
            for line, module in imported_modules(root, path):
                parts = module.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != folder.name:
                    found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_the_core_imports_no_framework():
    assert framework_imports(ROOT) == []


def test_no_service_imports_another():
    assert cross_service_imports(ROOT) == []


def test_the_checks_see_a_violation(tmp_path: Path):
    # A bad import in each shape the checks must catch: top level, lazy, relative.
    core = tmp_path / "kuma"
    (core / "edge").mkdir(parents=True)
    (core / "edge" / "ok.py").write_text("import flask\n")
    (core / "bad.py").write_text("import os\n\ndef f():\n    from grpc import aio\n")
    assert framework_imports(tmp_path) == ["kuma/bad.py:4 imports grpc"]

    services = tmp_path / "services"
    for name in ("a", "b", "cp"):
        (services / name).mkdir(parents=True)
        (services / name / "__init__.py").write_text("")
    (services / "a" / "x.py").write_text(
        "from .. import b\nfrom ..b import y\nfrom services.a import z\n"
    )
    (services / "cp" / "main.py").write_text("import services.a.x\n")
    assert cross_service_imports(tmp_path) == [
        "services/a/x.py:1 imports services.b",
        "services/a/x.py:2 imports services.b",
    ]
