"""The worker writes byte-code for the sandboxed packages (workers/runtime/bytecode.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.runtime.bytecode import ensure_bytecode


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "sandboxed_pkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "flow.py").write_text("STEPS = ('accept', 'dispatch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # PYTHONDONTWRITEBYTECODE=1
    yield folder
    sys.modules.pop("sandboxed_pkg", None)


def _pyc(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_byte_code_is_written_even_when_python_would_not(package: Path) -> None:
    flow = package / "flow.py"
    assert not _pyc(flow).exists()
    assert ensure_bytecode(["sandboxed_pkg"]) == []
    assert _pyc(flow).exists()
    # An edited source gets fresh byte-code on the next start, not the stale one.
    before = _pyc(flow).read_bytes()
    flow.write_text("STEPS = ('accept', 'dispatch', 'handle', 'callback')\n")
    later = flow.stat().st_mtime + 10  # compileall compares whole-second mtimes
    os.utime(flow, (later, later))
    assert ensure_bytecode(["sandboxed_pkg"]) == []
    assert _pyc(flow).read_bytes() != before


def test_a_tree_it_cannot_write_is_reported_not_fatal(package: Path) -> None:
    # A file where __pycache__ should be: unwritable even for root (chmod would not be).
    (package / "__pycache__").write_text("")
    assert ensure_bytecode(["sandboxed_pkg"]) == ["sandboxed_pkg"]
