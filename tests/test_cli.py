"""The production command: what `python -m ingestion` (the `ingestion` console script)
offers. Development tooling (`python -m devserver`) is not part of it."""

from __future__ import annotations

import re
import subprocess
import sys

from click.testing import CliRunner

from ingestion._version import __version__
from ingestion.cli import main


def test_the_production_command_offers_only_production_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    commands = re.findall(r"^  (\S+)\s", result.output.split("Commands:")[1], re.MULTILINE)
    assert sorted(commands) == ["backfill", "migrate", "prune", "rebuild", "reconcile", "redact", "relay", "replay"]


def test_it_tells_its_version():
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.output.strip()) == (0, f"helpdesk-ingestion {__version__}")


def test_importing_the_whole_package_never_imports_the_dev_tooling():
    code = ("import pkgutil, importlib, sys, ingestion\n"
            "for m in pkgutil.walk_packages(ingestion.__path__, 'ingestion.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('devserver', 'tests', 'bench')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr
