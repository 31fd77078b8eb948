"""setup.cfg names every directory it ships, so `pip install -e .` (make run) prints no setuptools warning.

Recent setuptools warns "Package 'verify_service.static' is absent from the `packages` configuration" for each
directory under a package that Python could import but ``packages`` leaves out (a data directory without an
``__init__.py``, found with ``find:``). The check here is that condition, read from setup.cfg the way
setuptools reads it; and every data file the service opens at run time is in ``package_data``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("verify_service", "integrations", "jobs")


def _options() -> dict[str, object]:
    return read_configuration(str(ROOT / "setup.cfg"))["options"]


def test_every_directory_under_the_packages_is_a_configured_package() -> None:
    packages = set(_options()["packages"])  # type: ignore[arg-type]
    directories = {".".join(path.relative_to(ROOT).parts) for source in SOURCES
                   for path in [ROOT / source, *(ROOT / source).rglob("*")]
                   if path.is_dir() and path.name != "__pycache__" and "__pycache__" not in path.parts}
    assert directories - packages == set()
    assert not any("__pycache__" in package for package in packages)


def test_the_data_files_are_package_data() -> None:
    package_data: dict[str, list[str]] = _options()["package_data"]  # type: ignore[assignment]
    for data_file in ("verify_service/static/site.css", "verify_service/static/sandbox.css",
                      "verify_service/support/data/release_catalog.json", "verify_service/migrations/script.py.mako"):
        path = Path(data_file)
        package = ".".join(path.parent.parts)
        assert any(fnmatch.fnmatch(path.name, pattern) for pattern in package_data.get(package, [])), data_file
