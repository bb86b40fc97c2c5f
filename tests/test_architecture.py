"""House rules that a test can hold: imports follow the flow, public surfaces are declared."""

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fhir_server"

# what each layer may import from fhir_server (architecture.md, "Flow of one write")
ALLOWED = {
    "errors": set(),
    "settings": set(),
    "spec": set(),
    "model": {"errors", "spec"},
    "search": {"errors", "spec", "model"},
    "storage": {"errors", "search"},
    "conformance": {"errors", "spec", "model", "search"},
    "security": {"errors", "settings", "spec", "model", "search", "storage"},
    "audit": {"errors", "spec", "model", "search", "storage", "security"},
    "engine": {"errors", "spec", "model", "search", "storage", "conformance", "security", "audit"},
    "reporting": {"errors", "settings", "spec", "model", "search", "storage", "engine", "conformance", "security"},
    "workflow": {"errors", "spec", "model", "search", "engine", "conformance"},
    # notifications: rules on the write pipeline like workflow's, plus the outbox (storage)
    # and the region's relays (workflow)
    "notify": {"errors", "spec", "model", "search", "storage", "engine", "conformance", "security", "workflow"},
    "api": {"errors", "settings", "model", "engine", "conformance", "search", "workflow", "security", "reporting",
            "audit", "notify"},
    "ui": {"errors", "settings", "model", "engine", "conformance", "search", "workflow", "security", "reporting", "api",
           "audit"},
    "app": {"api", "conformance", "engine", "model", "search", "settings", "storage", "workflow", "security", "reporting",
            "audit", "ui", "notify"},
    "cli": {"app", "conformance", "engine", "errors", "model", "search", "settings", "storage", "workflow", "security",
            "reporting", "audit", "notify"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fhir_server."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "fhir_server":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fhir_server."):
                    found.add(alias.name.split(".")[1])
    return found


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_flow(path):
    layer = _layer(path)
    if layer == "__init__":
        return
    assert layer in ALLOWED, f"new top-level module {layer}: add it to ALLOWED"
    wrong = {m for m in _imports(path) if m != layer and m not in ALLOWED[layer]}
    assert not wrong, f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(wrong)}"


SUBPACKAGES = ["api", "audit", "conformance", "engine", "model", "notify", "reporting", "search", "security", "spec",
               "storage", "ui", "workflow"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_public_surface_is_declared_and_resolves(name):
    module = importlib.import_module(f"fhir_server.{name}")
    assert module.__all__, f"fhir_server.{name} declares no __all__"
    for symbol in module.__all__:
        assert hasattr(module, symbol), f"fhir_server.{name}.__all__ names missing {symbol}"
