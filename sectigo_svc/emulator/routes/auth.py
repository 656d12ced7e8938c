"""``/auth/pwd`` and ``/auth/refresh``: password login and refresh-token exchange.

Credentials and refresh tokens are judged when the request arrives (``admit_*``), before any
injected delay; the handlers, which run after it, only mint the new pair.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from sectigo_svc.emulator import errors
from sectigo_svc.emulator.config import Account
from sectigo_svc.emulator.http import Request, Response, Router
from sectigo_svc.emulator.stats import Stats
from sectigo_svc.emulator.tokens import REFRESH_SCOPE, TokenIssuer, TokenRejected


class AuthRoutes:
    """``accounts`` is read on every login, so a password changed at run time counts at once."""

    def __init__(
        self, accounts: Callable[[], Sequence[Account]], tokens: TokenIssuer, stats: Stats
    ) -> None:
        self._accounts = accounts
        self._tokens = tokens
        self._stats = stats

    def register(self, router: Router) -> None:
        router.add(
            "login", "POST", "/auth/pwd", self.login, authenticated=False, admit=self.admit_login
        )
        router.add(
            "refresh",
            "POST",
            "/auth/refresh",
            self.refresh,
            authenticated=False,
            admit=self.admit_refresh,
        )

    def admit_login(self, request: Request) -> None:
        body = request.json(errors.unsupported, errors.invalid)
        if not isinstance(body, dict):
            raise errors.invalid("The body must be a JSON object")
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise errors.invalid("username and password are required strings")
        account = self._match(username, password)
        if account is None:
            self._stats.event("login_failures")
            raise errors.unauthorized("Invalid username or password")
        if not account.authorized:
            self._stats.event("login_failures")
            raise errors.forbidden("The user has no authority to use the API")

    def login(self, _: Request) -> Response:
        self._stats.event("logins")
        return Response.json(200, self._tokens.mint().to_json())

    def _match(self, username: str, password: str) -> Account | None:
        found = None
        for account in self._accounts():
            same_user = hmac.compare_digest(account.username.encode(), username.encode())
            same_password = hmac.compare_digest(account.password.encode(), password.encode())
            if same_user and same_password:
                found = account
        return found

    def admit_refresh(self, request: Request) -> None:
        token = request.body.decode("utf-8", errors="replace")
        if not token or token != token.strip():
            raise errors.unauthorized("The body must be the bare refresh token")
        try:
            self._tokens.verify(token, REFRESH_SCOPE)
        except TokenRejected as exc:
            raise errors.unauthorized(str(exc)) from exc

    def refresh(self, _: Request) -> Response:
        self._stats.event("refreshes")
        return Response.json(200, self._tokens.mint().to_json())
