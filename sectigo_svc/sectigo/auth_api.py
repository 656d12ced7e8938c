"""Login and refresh over HTTP: the two calls that produce tokens, for the credential store.

Both go through the transport (timeouts, retries, typed errors, one log line per attempt) without a
bearer token. The password and the refresh token are redacted from any server message.
"""

from __future__ import annotations

import json

from sectigo_svc.sectigo.credentials import Credentials
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.endpoints import LOGIN, REFRESH
from sectigo_svc.sectigo.models import Tokens
from sectigo_svc.sectigo.replies import json_reply
from sectigo_svc.sectigo.transport import JSON_TYPE, Body, Transport


class AuthApi:
    """The credential store's ``Authenticator``, over ``/auth/pwd`` and ``/auth/refresh``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def login(self, credentials: Credentials, deadline: Deadline | None) -> Tokens:
        """``POST /auth/pwd``: 401 wrong credentials, 403 no authority, 307 TLS auth required."""
        password = credentials.password.reveal()
        body = json.dumps({"username": credentials.username, "password": password})
        return self._transport.call(
            LOGIN,
            json_reply(Tokens.from_json),
            body=Body(body.encode(), JSON_TYPE),
            deadline=deadline,
            redact=(password,),
        )

    def refresh(self, refresh_token: str, deadline: Deadline | None) -> Tokens:
        """``POST /auth/refresh``: the raw token is the body, labelled JSON as Sectigo expects."""
        return self._transport.call(
            REFRESH,
            json_reply(Tokens.from_json),
            body=Body(refresh_token.encode(), JSON_TYPE),
            deadline=deadline,
            redact=(refresh_token,),
        )
