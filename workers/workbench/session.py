"""Sessions in a signed cookie, and the CSRF token every form carries.

The cookie holds the account name, the session's CSRF token and when it was issued,
signed with ``HOTLINE_WORKBENCH_SECRET_KEY`` (itsdangerous, HMAC-SHA1 over the payload with
a timestamp): HttpOnly, SameSite=Strict, Secure over HTTPS. A visitor who is not signed in
gets an anonymous session too, so the login form has a token to check. Signing in issues a
new session (new token), so a token seen before login is worthless after it.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

COOKIE = "hotline_wb"
LANG_COOKIE = "hotline_wb_lang"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    """One browser's session; ``username`` is ``None`` until it signs in."""

    csrf: str
    username: str | None = None
    issued: float = 0.0

    @staticmethod
    def fresh(username: str | None = None) -> Session:
        return Session(csrf=secrets.token_urlsafe(32), username=username, issued=time.time())

    def signed_out(self) -> Session:
        return replace(Session.fresh(), username=None)

    def csrf_ok(self, token: Any) -> bool:
        """The form's token is this session's (constant-time comparison)."""
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf)


class Sessions:
    """Reads and writes the session cookie."""

    def __init__(self, secret: str, max_age_s: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="hotline-workbench-session")
        self.max_age_s = max_age_s
        self.secure = secure

    def load(self, cookie: str | None) -> Session | None:
        """The session in the cookie, or ``None`` when absent, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age_s)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user = data.get("u")
        return Session(csrf=data["c"], username=user if isinstance(user, str) else None,
                       issued=float(data.get("t", 0.0)))

    def store(self, response: Response, session: Session) -> None:
        value = self._serializer.dumps({"c": session.csrf, "u": session.username,
                                        "t": session.issued})
        response.set_cookie(COOKIE, value, max_age=self.max_age_s, httponly=True,
                            samesite="strict", secure=self.secure, path="/")
