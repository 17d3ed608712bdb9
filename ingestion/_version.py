"""The version, written here and nowhere else.

pyproject.toml reads `__version__` at build time ([tool.setuptools.dynamic]), so a built
wheel's metadata carries the same number. `version()` is what `--version` prints.
"""

from __future__ import annotations

__version__ = "0.1.0"

DISTRIBUTION = "helpdesk-ingestion"


def version() -> str:
    """The installed distribution's version when the running code is that distribution, else `__version__`.

    Run from a checkout (make run, the tests, the image, which copies the package without
    installing it) there is no metadata, or it belongs to another copy of the code: then the
    constant here is the truth.
    """
    from importlib import metadata
    from pathlib import Path

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return __version__
    try:
        ours = Path(str(dist.locate_file("ingestion/_version.py"))).resolve() == Path(__file__).resolve()
    except OSError:
        ours = False
    return dist.version if ours else __version__
