"""The package's shape, as issue 20 fixed it: small modules, and error classes that know
nothing of the web layer (web/error_pages.py renders them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ingestion"
MAX_LINES = 300


def test_no_module_of_the_package_is_over_300_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_error_classes_import_nothing_of_the_web_layer():
    tree = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    imported = {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not imported & {"flask", "werkzeug", "gunicorn"}, imported
