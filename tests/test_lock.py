"""The lock files are in step with pyproject.toml, pinned with hashes, and the runtime lock
carries neither the test tools nor the local servers (issue 28: reproducible installs, a
lighter image). `make lock` rewrites them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = _PIN.match(block)
        if match:
            assert "--hash=sha256:" in block, f"{name}: {match.group(1)} has no hash"
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


RUNTIME, DEV = _pins("runtime.lock"), _pins("dev.lock")


def _requirements(*extras: str) -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return reqs


@pytest.mark.parametrize(("lock", "extras"), [("runtime", ()), ("dev", ("dev", "local"))])
def test_every_declared_dependency_is_pinned_within_its_range(lock: str,
                                                             extras: tuple[str, ...]) -> None:
    pins = RUNTIME if lock == "runtime" else DEV
    wrong = []
    for req in _requirements(*extras):
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None or not req.specifier.contains(pinned, prereleases=True):
            wrong.append(f"{req} -> {pinned}")
    assert wrong == [], f"requirements/{lock}.lock is out of step: run `make lock`"


def test_the_runtime_lock_has_no_local_servers_or_test_tools() -> None:
    for extra in ("local", "dev"):
        for req in _requirements(extra):
            name = canonicalize_name(req.name)
            if not any(canonicalize_name(r.name) == name for r in _requirements()):
                assert name not in RUNTIME, f"{name} ({extra}) is in the runtime lock"


def test_both_locks_agree_on_every_package_they_share() -> None:
    # The image and the tests run the same versions of what the image has.
    differ = {n: (v, DEV[n]) for n, v in RUNTIME.items() if DEV.get(n) != v}
    assert differ == {}


def test_make_and_the_image_install_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/dev.lock" in makefile
    dockerfile = (ROOT / "deploy" / "k8s" / "image" / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/runtime.lock" in dockerfile
    assert "pip install --no-deps -e ." in dockerfile
