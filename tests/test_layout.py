"""The package's shape, as issue 20 fixed it: small modules, and error classes that know
nothing of the web layer (web/error_pages.py renders them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ingestion"
MAX_LINES = 300


def test_no_module_is_over_300_lines():
    """The package's, and the benches' and the development servers' too."""
    trees = (PACKAGE, PACKAGE.parent / "bench", PACKAGE.parent / "devserver")
    long = {str(path.relative_to(PACKAGE.parent)): n for tree in trees for path in tree.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_error_classes_import_nothing_of_the_web_layer():
    tree = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    imported = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not imported & {"flask", "werkzeug", "gunicorn"}, imported


def _nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (names for type checkers, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _nodes(node)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports at run time, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["ingestion", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.add(".".join([*base, *([node.module] if node.module else [])]))
    return found


def test_the_http_layer_is_all_in_web_and_imports_no_command():
    """Issue 20: web/ holds the whole HTTP layer (Flask, Werkzeug and gunicorn are imported
    nowhere else in the package), and nothing in it imports a command or the command line."""
    outside = {str(path.relative_to(PACKAGE)): sorted(m for m in _imports(path)
                                                      if m.split(".")[0] in {"flask", "werkzeug", "gunicorn"})
               for path in PACKAGE.rglob("*.py") if "web" not in path.relative_to(PACKAGE).parts[:1]}
    assert {name: found for name, found in outside.items() if found} == {}
    reaching = {str(path.relative_to(PACKAGE)): sorted(m for m in _imports(path)
                                                       if m.startswith(("ingestion.jobs", "ingestion.cli")))
                for path in (PACKAGE / "web").rglob("*.py")}
    assert {name: found for name, found in reaching.items() if found} == {}


def test_every_error_class_is_in_errors_py():
    """Issue 20: every error class in errors.py (one place to find what can go wrong)."""
    exceptions = {"Exception", "ValueError", "RuntimeError", "LookupError", "KeyError", "OSError", "ClickException"}
    tree = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    exceptions |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    elsewhere = [f"{path.relative_to(PACKAGE)}:{node.name}" for path in PACKAGE.rglob("*.py") if path.name != "errors.py"
                 for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(node, ast.ClassDef)
                 and any((base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")) in exceptions
                         or (getattr(base, "id", "") or "").endswith(("Error", "Exception")) for base in node.bases)]
    assert elsewhere == []
