"""``hotline migrate``: apply the ledger's pending migrations, once, before a rollout.

In Kubernetes this is the Job ``hotline-migrate`` (deploy/k8s/base/migrate-job.yaml); the
processes there run with ``HOTLINE_MIGRATE_ON_START=false`` and wait until nothing is
pending. Locally ``hotline stack up`` applies them too.

Exit codes: 0 up to date (or ``--check`` found nothing pending), 1 a migration failed
(nothing of this run is applied) or ``--check`` found pending ones, 3 PostgreSQL is not
reachable.
"""

from __future__ import annotations

import psycopg
import typer

from workers.cli.output import fail
from workers.runtime.migrate import MigrationError, apply_migrations, pending_migrations
from workers.runtime.settings import get_settings


def migrate(
    check: bool = typer.Option(
        False, "--check", help="Only list the pending migrations; exit 1 if there are any."),
) -> None:
    """Apply the ledger's pending migrations (deploy/migrations) to HOTLINE_DATABASE_URL."""
    settings = get_settings()
    try:
        if check:
            pending = pending_migrations(settings.dsn)
            if pending:
                raise fail(f"pending migrations: {', '.join(pending)}", 1)
            typer.echo("the ledger's schema is current")
            return
        applied = apply_migrations(settings.dsn)
    except MigrationError as exc:
        raise fail(f"migration failed, nothing applied: {exc}", 1) from None
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"PostgreSQL is not reachable: {first}", 3) from None
    if applied:
        typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        typer.echo("the ledger's schema is current; nothing to apply")
