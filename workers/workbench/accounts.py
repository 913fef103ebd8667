"""Workbench accounts (per unit and role), Argon2 password hashes and the login throttle.

Accounts live in ``workbench_accounts`` (migration 010). A unit account acts for exactly one
unit; dispatchers and supervisors for none. Failed logins are counted per account name and
client address in ``workbench_login_failures``: ``max_failures`` in a row lock that pair for
``lock_minutes``, so one address cannot guess a password and a locked account is not locked
for everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from psycopg_pool import AsyncConnectionPool

from activities.dispatch.registry import Registry

ROLES = ("unit", "dispatcher", "supervisor")
MIN_PASSWORD_CHARS = 10
MAX_NAME_CHARS = 64

_HASHER = PasswordHasher()
_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """Verified when the account name is unknown, so an unknown name takes as long as a
    wrong password and the answer does not tell which names exist (made on first use:
    Argon2 is slow on purpose)."""
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash("hotline-workbench-no-such-account"))
    return _DUMMY[0]


class AccountError(ValueError):
    """A bad account definition (role, unit, name or password)."""


@dataclass(frozen=True)
class Account:
    """Who is signed in: the role decides the pages, ``unit_id`` the cases (unit staff)."""

    username: str
    role: str
    unit_id: str | None
    display_name: str


@dataclass(frozen=True)
class NewAccount:
    """An account to create or replace (``hotline workbench add-user``, the demo)."""

    username: str
    role: str
    password: str
    unit_id: str | None = None
    display_name: str | None = None

    def check(self) -> None:
        if not self.username or len(self.username) > MAX_NAME_CHARS or not all(
                ch.isalnum() or ch in "-_." for ch in self.username):
            raise AccountError("the user name is 1-64 letters, digits, '-', '_' or '.'")
        if self.role not in ROLES:
            raise AccountError(f"the role is one of {', '.join(ROLES)}")
        if (self.role == "unit") != bool(self.unit_id):
            raise AccountError("unit staff need --unit; dispatchers and supervisors have none")
        if len(self.password) < MIN_PASSWORD_CHARS:
            raise AccountError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")


def hash_password(password: str) -> str:
    """An Argon2id hash (PHC string) of ``password``."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown account is checked against a dummy hash."""
    try:
        return _HASHER.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_UPSERT = """
INSERT INTO workbench_accounts (username, role, unit_id, display_name, password_hash)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role, unit_id = EXCLUDED.unit_id,
    display_name = EXCLUDED.display_name, password_hash = EXCLUDED.password_hash,
    disabled = false"""


def save_account(dsn: str, new: NewAccount, registry: Registry | None = None) -> Account:
    """Create the account, or replace its role, unit and password (blocking).

    With ``registry``, a unit account's unit must be in it, and it names the account.

    Raises:
        AccountError: The definition is not valid.
    """
    new.check()
    unit = registry.get(new.unit_id) if registry is not None and new.unit_id else None
    if registry is not None and new.unit_id and unit is None:
        raise AccountError(f"no unit {new.unit_id!r} in the unit registry")
    name = new.display_name or (unit.name if unit else None) or new.unit_id or new.username
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        conn.execute(_UPSERT, (new.username, new.role, new.unit_id, name,
                               hash_password(new.password)))
    return Account(new.username, new.role, new.unit_id, name)


class AccountStore:
    """The app's reads and writes of accounts and failed logins."""

    def __init__(self, pool: AsyncConnectionPool, max_failures: int, lock_minutes: int) -> None:
        self.pool = pool
        self.max_failures = max_failures
        self.lock = timedelta(minutes=lock_minutes)

    async def get(self, username: str) -> Account | None:
        """The enabled account of that name (a session names it on every request)."""
        row = await self._row(username)
        return row[0] if row else None

    async def _row(self, username: str) -> tuple[Account, str] | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                """SELECT username, role, unit_id, display_name, password_hash
                     FROM workbench_accounts WHERE username = %s AND NOT disabled""",
                (username,))).fetchone()
        return (Account(*row[:4]), row[4]) if row else None

    async def locked_until(self, username: str, client: str) -> datetime | None:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                """SELECT locked_until FROM workbench_login_failures
                    WHERE username = %s AND client = %s AND locked_until > now()""",
                (username, client))).fetchone()
        return row[0] if row else None

    async def authenticate(self, username: str, password: str, client: str) -> Account | None:
        """The account when the password matches; else counts the failure."""
        found = await self._row(username)
        if verify_password(found[1] if found else None, password) and found:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "DELETE FROM workbench_login_failures WHERE username = %s AND client = %s",
                    (username, client))
            return found[0]
        await self._failed(username, client)
        return None

    async def _failed(self, username: str, client: str) -> None:
        # A lock that has run out starts the count afresh.
        async with self.pool.connection() as conn:
            await conn.execute(
                """INSERT INTO workbench_login_failures AS f (username, client, failures)
                   VALUES (%s, %s, 1)
                   ON CONFLICT (username, client) DO UPDATE SET
                       failures = CASE WHEN f.locked_until IS NOT NULL
                                        AND f.locked_until <= now() THEN 1
                                       ELSE f.failures + 1 END,
                       locked_until = CASE WHEN f.locked_until IS NOT NULL
                                            AND f.locked_until <= now() THEN NULL
                                           ELSE f.locked_until END,
                       last_failure_at = now()""",
                (username[:MAX_NAME_CHARS * 2], client))
            await conn.execute(
                """UPDATE workbench_login_failures SET locked_until = now() + %s
                    WHERE username = %s AND client = %s AND failures >= %s
                      AND locked_until IS NULL""",
                (self.lock, username[:MAX_NAME_CHARS * 2], client, self.max_failures))


def account_row(account: Account) -> dict[str, Any]:
    """The account as a plain dict (logs, JSON output)."""
    return {"username": account.username, "role": account.role, "unit_id": account.unit_id,
            "display_name": account.display_name}
