"""What every ``hotline`` command prints, and how its process ends.

Personal data (caller phone and name) never reaches the terminal: records are printed
through :func:`redact`, free text through :func:`mask_text`. Times are local, to the
second, with the UTC offset. JSON output is UTF-8, so Chinese stays readable.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from temporalio.service import RPCError

__all__ = [
    "console",
    "describe_error",
    "err_console",
    "fail",
    "fmt_time",
    "mask_text",
    "print_json",
    "redact",
    "run_as_process",
]

PERSONAL_FIELDS = frozenset({"caller_phone", "caller_name"})
REDACTED = "«redacted»"
# Mainland mobile numbers and landlines with an area code, as citizens write them in text.
_PHONE = re.compile(
    r"(?<!\d)(?:\+?86[- ]?)?(?:1[3-9]\d[- ]?\d{4}[- ]?\d{4}|0\d{2,3}-\d{7,8})(?!\d)"
)


def mask_text(text: str) -> str:
    """``text`` with phone numbers masked (free text may quote the caller's number)."""
    return _PHONE.sub("***", text)


def redact(value: Any) -> Any:
    """A copy of a decoded record without personal data, for printing.

    Caller phone and name become ``«redacted»`` (or stay ``None``), phone numbers inside
    any string are masked, bytes become base64; nested records and lists are handled.
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in PERSONAL_FIELDS:
                out[key] = None if item is None else REDACTED
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def describe_error(exc: BaseException) -> str:
    """One line for people: a Temporal RPC error's status and message, else the class."""
    if isinstance(exc, RPCError):
        return f"{exc.status.name}: {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def fmt_time(value: datetime | None) -> str:
    """Local time to the second, with the UTC offset: ``2026-11-22 13:05:01 +0800``."""
    if value is None:
        return "—"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def console() -> Console:
    """Rich console on the current standard output (wide, so tables are not cut)."""
    return Console(width=max(160, Console().width), highlight=False, soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """JSON on standard output, UTF-8 (Chinese stays readable)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def run_as_process(typer_app: typer.Typer) -> NoReturn:
    """Run ``typer_app`` as this process's command, then exit without interpreter teardown.

    A process that used the Temporal client can abort while the interpreter finalizes,
    after its work is done (temporalio's Rust threads; sdk-python issue 300, exit 134),
    which would turn "accepted" (0) or "refused" (1) into 134 for a calling script. So the
    exit status is taken from the command, the standard streams are flushed, and the
    process ends with ``os._exit``. Use it for a process's entry point only, never for a
    command run inside another program (tests with typer's runner).
    """
    code = 0
    try:
        typer_app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # a bug: show it, as the interpreter would, and fail
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            logging.shutdown()  # what the skipped atexit would do: flush and close handlers
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)


def fail(message: str, code: int = 1) -> typer.Exit:
    """One red line on stderr and the exit to raise: ``raise fail("…", 3) from None``."""
    err_console().print(message, markup=False, style="red", soft_wrap=True)
    return typer.Exit(code)
