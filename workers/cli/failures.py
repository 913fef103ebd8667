"""How every ``hotline`` command fails: one line on stderr and a documented exit code.

The codes (``docs/cli.md`` and ``hotline --help`` list the same table):

====  ===================================================================================
0     done
1     refused or not found: the server answered "no" (unknown case, plan or dead letter;
      plan already started; a decision the case refused)
2     bad input: usage, options, malformed dates (typer's own usage errors are 2 as well)
3     a server is unreachable: Temporal, Kafka or PostgreSQL (down, wrong address, not
      migrated)
4     bad file: an input file that is missing, unreadable or not what it should be
5     no answer in time: the request went out, nothing confirmed it (is a worker
      running?); retrying with the same event id is safe
70    a bug: an error the command did not expect (``hotline --traceback ...`` shows it)
130   interrupted (Ctrl-C)
====  ===================================================================================

:class:`HotlineGroup` is the one place that turns an exception escaping a command into
that line and code, so commands raise what they know (a :class:`CliFailure`, or the
client library's own error) and never print a traceback.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import traceback
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, overload

import typer
from typer._click import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from workers.cli.output import err_console, fail

__all__ = [
    "EXIT_BAD_FILE",
    "EXIT_BAD_INPUT",
    "EXIT_BUG",
    "EXIT_CODES_HELP",
    "EXIT_INTERRUPTED",
    "EXIT_NO_ANSWER",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "STACK_HINT",
    "BadFile",
    "BadInput",
    "CliFailure",
    "Failure",
    "HotlineGroup",
    "NoAnswer",
    "Refused",
    "Unreachable",
    "classify",
    "parse_day",
    "parse_month",
    "require_kafka",
]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_FILE = 4
EXIT_NO_ANSWER = 5
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130

# The epilog of `hotline --help` (rich markup; blank lines keep the rows apart).
EXIT_CODES_HELP = (
    "[bold]Exit codes[/bold]: 0 done · 1 refused or not found · 2 bad input (usage, "
    "dates) · 3 Temporal, Kafka or PostgreSQL unreachable · 4 bad file · 5 no answer in "
    "time (retry with the same --event-id) · 70 a bug (add --traceback) · 130 "
    "interrupted. Errors are one line on stderr; --json output goes to stdout. "
    "See docs/cli.md."
)

STACK_HINT = "is it up? (hotline stack status)"


class CliFailure(Exception):
    """A failure a command knows how to explain: its one-line message and exit code."""

    code = EXIT_BUG

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class Refused(CliFailure):
    """The server answered no: unknown id, already done, a refused decision."""

    code = EXIT_REFUSED


class BadInput(CliFailure):
    """An argument or option that cannot be used (a malformed date, a bad combination)."""

    code = EXIT_BAD_INPUT


class Unreachable(CliFailure):
    """Temporal, Kafka or PostgreSQL did not answer."""

    code = EXIT_UNREACHABLE

    def __init__(self, server: str, where: str, why: str = "") -> None:
        why = f" ({why})" if why else ""
        super().__init__(f"{server} not reachable at {where}{why}; {STACK_HINT}")


class BadFile(CliFailure):
    """An input file that is missing, unreadable or malformed."""

    code = EXIT_BAD_FILE


class NoAnswer(CliFailure):
    """The request went out and nothing confirmed it in time."""

    code = EXIT_NO_ANSWER


@dataclass(frozen=True)
class Failure:
    """One line for people and the exit code, for an exception."""

    message: str
    code: int


# --------------------------------------------------------------------------------------
# Inputs every command parses the same way


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_month(text: str, option: str = "--month") -> str:
    """``YYYY-MM`` as given, or :class:`BadInput` naming the option."""
    if not _MONTH.match(text.strip()):
        raise BadInput(f"{option} must be a month as YYYY-MM (e.g. 2026-10), not {text!r}")
    return text.strip()


@overload
def parse_day(text: str, option: str = ...) -> date: ...
@overload
def parse_day(text: None, option: str = ...) -> None: ...
@overload
def parse_day(text: str | None, option: str = ...) -> date | None: ...
def parse_day(text: str | None, option: str = "--at") -> date | None:
    """``YYYY-MM-DD`` as a date (``None`` stays ``None``), or :class:`BadInput`."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(f"{option} must be a day as YYYY-MM-DD (e.g. 2026-12-06), "
                       f"not {text!r}") from None


def require_kafka(bootstrap: str, timeout: float = 3.0) -> None:
    """Fail fast when no bootstrap server takes a TCP connection.

    kafka-python retries an absent broker for 30 s before it gives up; a person at the
    terminal is told at once instead. A broker that accepts the connection is left to
    the client (TLS, SASL and topic errors are its to report).

    Raises:
        Unreachable: Not one of the bootstrap servers accepted a connection.
    """
    why = "no bootstrap server"
    for server in (s.strip() for s in bootstrap.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or server, int(port or 9092)),
                                          timeout=timeout):
                return
        except (OSError, ValueError) as exc:
            why = _socket_reason(exc)
    raise Unreachable("Kafka", bootstrap, why)


# --------------------------------------------------------------------------------------
# Exceptions → one line and a code


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _socket_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return _one_line(str(exc) or type(exc).__name__, 120)


def _reason(text: str) -> str:
    """The gist of a client library's connection error."""
    lower = text.lower()
    for needle, gist in (("connection refused", "connection refused"),
                         ("timed out", "no answer"), ("timeout", "no answer"),
                         ("name or service not known", "unknown host"),
                         ("failed to lookup address", "unknown host"),
                         ("password authentication failed", "authentication failed"),
                         ("does not exist", "no such database"),
                         ("certificate", "TLS certificate problem")):
        if needle in lower:
            return gist
    return _one_line(text, 160)


def _postgres_where(exc: BaseException) -> str:
    """``host:port/db`` of the failed connection, never the password."""
    conn = getattr(exc, "pgconn", None)
    try:
        if conn is not None and conn.host:
            return (f"{conn.host.decode()}:{conn.port.decode()}/{conn.db.decode()}")
    except Exception:  # a half-made connection may not say; the settings will
        pass
    from workers.runtime.settings import Settings

    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(Settings().dsn)
        return f"{info.get('host', '?')}:{info.get('port', 5432)}/{info.get('dbname', '?')}"
    except Exception:
        return "the configured database (HOTLINE_DATABASE_URL)"


def _temporal_where() -> str:
    from workers.runtime.settings import Settings

    try:
        return Settings().temporal_address
    except Exception:
        return "HOTLINE_TEMPORAL_ADDRESS"


def _kafka_where() -> str:
    from workers.runtime.settings import Settings

    try:
        return Settings().kafka_bootstrap
    except Exception:
        return "HOTLINE_KAFKA_BOOTSTRAP"


def _file_failure(exc: OSError) -> Failure:
    name = exc.filename or "file"
    reason = {errno.ENOENT: "no such file", errno.EISDIR: "is a directory",
              errno.EACCES: "permission denied", errno.ENOTDIR: "not a directory",
              errno.ENOSPC: "no space left"}.get(exc.errno or 0,
                                                 _one_line(exc.strerror or str(exc), 120))
    return Failure(f"{name}: {reason}", EXIT_BAD_FILE)


def classify(exc: BaseException) -> Failure:
    """The line and code for ``exc``: what a person should read instead of a traceback."""
    if isinstance(exc, CliFailure):
        return Failure(_one_line(exc.message, 500), exc.code)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", EXIT_INTERRUPTED)

    from temporalio.client import RPCTimeoutOrCancelledError, WorkflowFailureError
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, WorkflowAlreadyStartedError):
        return Failure(f"already started: workflow {exc.workflow_id} exists "
                       "(an id is used once)", EXIT_REFUSED)
    if isinstance(exc, WorkflowFailureError):
        cause = exc.cause or exc
        return Failure(f"the workflow ended without a result: {_one_line(str(cause), 200)}",
                       EXIT_REFUSED)
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return Failure("Temporal gave no answer in time (is a worker running?)",
                       EXIT_NO_ANSWER)
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Failure(f"not found: {_one_line(exc.message, 200)}", EXIT_REFUSED)
        if exc.status == RPCStatusCode.UNAVAILABLE:
            return Failure(Unreachable("Temporal", _temporal_where(),
                                       _reason(exc.message)).message, EXIT_UNREACHABLE)
        if exc.status == RPCStatusCode.DEADLINE_EXCEEDED:
            return Failure("Temporal gave no answer in time (is a worker running?)",
                           EXIT_NO_ANSWER)
        return Failure(f"Temporal refused: {exc.status.name}: {_one_line(exc.message, 200)}",
                       EXIT_REFUSED)
    if isinstance(exc, RuntimeError) and "client connect" in str(exc):
        return Failure(Unreachable("Temporal", _temporal_where(), _reason(str(exc))).message,
                       EXIT_UNREACHABLE)

    import psycopg
    from psycopg import errors as pg_errors

    if isinstance(exc, psycopg.OperationalError):
        return Failure(Unreachable("PostgreSQL", _postgres_where(exc),
                                   _reason(str(exc))).message, EXIT_UNREACHABLE)
    if isinstance(exc, pg_errors.UndefinedTable):
        return Failure(f"the ledger at {_postgres_where(exc)} is not migrated "
                       f"({_one_line(str(exc), 120)})", EXIT_UNREACHABLE)

    from kafka import errors as kafka_errors

    if isinstance(exc, kafka_errors.KafkaConnectionError | kafka_errors.KafkaTimeoutError
                  | kafka_errors.BrokerNotAvailableError):
        return Failure(Unreachable("Kafka", _kafka_where(), _reason(str(exc))).message,
                       EXIT_UNREACHABLE)

    from schemas.registry import RegistryUnavailable

    if isinstance(exc, RegistryUnavailable):
        return Failure(f"the Schema Registry did not answer ({_one_line(str(exc), 200)})",
                       EXIT_UNREACHABLE)

    from activities.dispatch.workdays import CalendarNotCovered

    if isinstance(exc, CalendarNotCovered):
        return Failure(f"{exc} (docs/calendar.md)", EXIT_REFUSED)

    from pydantic import ValidationError

    from activities.dispatch.category_model import CategoryModelError
    from activities.dispatch.evaluation import EvalError
    from activities.dispatch.learned import ModelError
    from activities.dispatch.registry import RegistryError
    from activities.dispatch.rules import RulesError
    from activities.dispatch.training import TrainingError
    from activities.governance.config import GovernanceError

    if isinstance(exc, EvalError | ModelError | CategoryModelError | RegistryError
                  | RulesError | TrainingError | GovernanceError):  # each names the file
        return Failure(f"bad file: {_one_line(str(exc), 400)}", EXIT_BAD_FILE)
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        problems = "; ".join(f"HOTLINE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in exc.errors())
        return Failure(f"bad setting: {_one_line(problems, 300)}", EXIT_BAD_INPUT)

    import yaml

    if isinstance(exc, yaml.YAMLError | json.JSONDecodeError | UnicodeDecodeError):
        return Failure(f"bad file: {_one_line(str(exc), 200)}", EXIT_BAD_FILE)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return Failure(f"server not reachable ({_socket_reason(exc)}); {STACK_HINT}",
                       EXIT_UNREACHABLE)
    if isinstance(exc, OSError) and exc.filename is not None:
        return _file_failure(exc)
    return Failure(f"unexpected error: {type(exc).__name__}: {_one_line(str(exc), 200)} "
                   "(a bug; hotline --traceback ... shows where)", EXIT_BUG)


def bad_file(path: Path, problem: str) -> BadFile:
    """``<path>: <problem>`` as a :class:`BadFile` (one line)."""
    return BadFile(f"{path}: {_one_line(problem, 400)}")


# --------------------------------------------------------------------------------------
# The command group that applies it


class HotlineGroup(TyperGroup):
    """A typer group whose commands end in one line and an exit code, never a traceback.

    Usage errors raised by a command or its options (typer's own, exit 2) are printed on
    one line too. ``--traceback`` on the root command adds the traceback of an error
    the commands did not expect.
    """

    def invoke(self, ctx: Context) -> Any:
        # typer (0.2x) vendors click as typer._click: its exceptions, not click's.
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, NoArgsIsHelpError, BrokenPipeError):
            raise  # BrokenPipeError: `hotline ... | head` (typer ends quietly)
        except UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            raise fail(f"{where}: {_one_line(exc.format_message())} "
                       f"(see {where} --help)", EXIT_BAD_INPUT) from None
        except ClickException as exc:
            raise fail(_one_line(exc.format_message()), exc.exit_code) from None
        except (Exception, KeyboardInterrupt) as exc:
            try:
                failure = classify(exc)
            except Exception:  # never let the explanation hide the error
                failure = Failure(f"unexpected error: {type(exc).__name__}: "
                                  f"{_one_line(str(exc), 200)}", EXIT_BUG)
            if failure.code == EXIT_BUG and ctx.find_root().params.get("traceback"):
                err_console().print("".join(traceback.format_exception(exc)), markup=False)
            raise fail(failure.message, failure.code) from None


def traceback_option() -> Any:
    """The root command's ``--traceback`` option (read by :class:`HotlineGroup`)."""
    return typer.Option(False, "--traceback",
                        help="On an unexpected error (exit 70), print its traceback too.")

