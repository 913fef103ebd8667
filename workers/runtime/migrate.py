"""Numbered SQL migrations for the case ledger, and database creation.

Migrations are the files ``deploy/migrations/NNN_name.sql``. Each is applied once, in
number order, and recorded in ``schema_migrations``. All pending files are applied in one
transaction that first takes a transaction-level advisory lock, so two processes starting
at the same moment (a worker and a bridge, two test sessions) apply each file exactly once:
the second waits for the first, then finds nothing left to do.

Who applies them: ``hotline migrate`` (a Kubernetes Job before each rollout,
deploy/k8s/base/migrate-job.yaml) and ``hotline stack up``. The worker, the projector and
Open311 also do at start while ``HOTLINE_MIGRATE_ON_START`` is true (the default, for the
local stack and the tests); with it false they wait until nothing is pending
(:func:`migrate_or_wait`), so a rollout applied together with its Job starts in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from workers.runtime.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = REPO_ROOT / "deploy" / "migrations"

# Arbitrary but fixed key for pg_advisory_xact_lock: every hotline process uses the same one.
_LOCK_KEY = 0x686F746C696E65  # "hotline" in ASCII

_FILE_NAME = re.compile(r"^(\d{3,})_[A-Za-z0-9_\-]+\.sql$")

_CREATE_TABLE = b"""
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """A migration file is misnamed, duplicated or failed to apply."""


@dataclass(frozen=True)
class Migration:
    """One migration file.

    Attributes:
        version: The number in front of the file name (``1`` for ``001_ledger.sql``).
        name: The file name without ``.sql`` (``001_ledger``).
        path: Where the file is.
    """

    version: int
    name: str
    path: Path


def discover(migrations_dir: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files of a folder, in the order they apply.

    Args:
        migrations_dir: Folder holding ``NNN_name.sql`` files.

    Returns:
        The migrations sorted by version.

    Raises:
        MigrationError: A ``.sql`` file does not follow ``NNN_name.sql`` or two files share
            a number.
    """
    found: dict[int, Migration] = {}
    for path in sorted(migrations_dir.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path}: version {version} is also used by {found[version].path.name}"
            )
        found[version] = Migration(version=version, name=path.stem, path=path)
    return [found[v] for v in sorted(found)]


def apply_migrations(dsn: str, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration the database has not seen yet.

    Pending files run in version order inside one transaction, after
    ``pg_advisory_xact_lock``: either all of them land or none, and concurrent callers are
    serialised. A file that is already recorded is never run again, even if it changed.

    Args:
        dsn: Connection string of the target database.
        migrations_dir: Folder holding ``NNN_name.sql`` files.

    Returns:
        Names of the migrations applied by this call (``["001_ledger"]``), empty when the
        database was already up to date.

    Raises:
        MigrationError: A file is misnamed or a statement failed (the database is left as
            it was before the call).
    """
    migrations = discover(migrations_dir)
    applied: list[str] = []
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(_CREATE_TABLE)
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in migrations:
            if migration.version in done:
                continue
            log.info("applying migration %s", migration.name)
            try:
                # bytes: the file is trusted project SQL, run as one multi-statement script.
                conn.execute(migration.path.read_bytes())
            except psycopg.Error as exc:
                raise MigrationError(f"{migration.path.name}: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration.name)
    return applied


def pending_migrations(dsn: str, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Names of migrations not yet applied to a database (read-only).

    Args:
        dsn: Connection string of the target database.
        migrations_dir: Folder holding ``NNN_name.sql`` files.

    Returns:
        Names of the pending migrations, in the order they would apply.
    """
    migrations = discover(migrations_dir)
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        done: set[int] = set()
        if exists and exists[0]:
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return [m.name for m in migrations if m.version not in done]


def admin_dsn(dsn_or_settings: str | Settings) -> str:
    """The connection string for the server's ``postgres`` maintenance database.

    Args:
        dsn_or_settings: Any DSN on the server, or settings whose ``dsn`` is used.

    Returns:
        The same connection parameters with ``dbname=postgres``.
    """
    dsn = dsn_or_settings.dsn if isinstance(dsn_or_settings, Settings) else dsn_or_settings
    return make_conninfo(dsn, dbname="postgres")


def ensure_database(dsn_or_settings: str | Settings, name: str) -> bool:
    """Create a database unless it exists.

    Args:
        dsn_or_settings: A DSN on the target server (any database on it; the call connects
            to ``postgres``), or settings whose ``dsn`` names the server.
        name: The database to create.

    Returns:
        True if this call created the database, False if it already existed.
    """
    with psycopg.connect(admin_dsn(dsn_or_settings), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if row is not None:
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:
            # Another process created it between the check and the CREATE.
            return False
        except errors.UniqueViolation:
            # Same race, reported through the pg_database catalog index instead.
            return False
    log.info("created database %s", name)
    return True


async def migrate_or_wait(settings: Settings, stop: asyncio.Event | None = None, *,
                          poll_s: float = 5.0) -> bool:
    """Make sure the ledger's schema is current before a process uses it.

    With ``settings.migrate_on_start`` the pending migrations are applied (idempotent,
    serialised by the advisory lock). Otherwise this waits, logging what is pending, until
    ``hotline migrate`` (the Job) has applied them; a database that does not answer yet is
    waited for too.

    Returns:
        True when the schema is current; False when ``stop`` was set while waiting.

    Raises:
        MigrationError: ``migrate_on_start`` and a migration failed.
    """
    if settings.migrate_on_start:
        await asyncio.to_thread(apply_migrations, settings.dsn)
        return True
    stop = stop or asyncio.Event()
    said = ""
    while not stop.is_set():
        try:
            pending = await asyncio.to_thread(pending_migrations, settings.dsn)
        except psycopg.Error as exc:
            news = f"ledger not reachable: {type(exc).__name__}"
        else:
            if not pending:
                return True
            news = f"waiting for `hotline migrate` to apply {', '.join(pending)}"
        if news != said:  # once per change, not every poll
            log.warning(news)
            said = news
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)
    return False
