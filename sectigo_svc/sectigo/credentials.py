"""The Sectigo account's credentials: a username and a password that never shows itself.

The password comes from an argument, the environment, or a secret file; a file is remembered so
that a corrected password can be read again without a restart (:meth:`Credentials.reread`). The
password is held as a :class:`Secret` and never appears in ``repr``, logs or errors.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from sectigo_svc.sectigo.errors import CredentialsError

USERNAME_ENV = "SECTIGO_USERNAME"
PASSWORD_ENV = "SECTIGO_PASSWORD"  # noqa: S105 (a variable name)
PASSWORD_FILE_ENV = "SECTIGO_PASSWORD_FILE"  # noqa: S105 (a variable name)


class Secret:
    """A string that does not show itself: ``repr``/``str`` print a mask, pickling is refused."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    """A Sectigo username and password (the password always as a :class:`Secret`).

    ``password_file`` is where the password came from, if it came from a file: see :meth:`reread`.
    """

    username: str
    password: Secret
    password_file: Path | None = field(default=None, compare=False)

    def reread(self) -> Credentials:
        """The same credentials with the password file's current content (``self`` without a
        file). Raises ``CredentialsError`` when the file cannot be read or is empty."""
        if self.password_file is None:
            return self
        secret = _read_secret_file(self.password_file)
        if secret == self.password:
            return self
        return Credentials(self.username, secret, self.password_file)

    @classmethod
    def load(
        cls,
        username: str | None = None,
        password: str | Secret | None = None,
        *,
        password_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Take the pair from arguments, then ``SECTIGO_USERNAME``/``SECTIGO_PASSWORD``.

        The password may also come from a secret file (``password_file`` or the file named by
        ``SECTIGO_PASSWORD_FILE``) holding just the password; one trailing newline is dropped.
        Explicit arguments beat the environment; both halves are required. A password file is
        remembered, so that :meth:`reread` can pick up a corrected password without a restart.
        """
        env = os.environ if environ is None else environ
        user = username or env.get(USERNAME_ENV) or ""
        secret: Secret | None
        source: Path | None = None
        if isinstance(password, Secret):
            secret = password if password else None
        elif password:
            secret = Secret(password)
        elif password_file is not None:
            source = password_file
        elif env.get(PASSWORD_ENV):
            secret = Secret(env[PASSWORD_ENV])
        elif env.get(PASSWORD_FILE_ENV):
            source = Path(env[PASSWORD_FILE_ENV])
        else:
            secret = None
        if source is not None:
            secret = _read_secret_file(source)
        if not user and secret is None:
            raise CredentialsError(
                f"no Sectigo credentials: set {USERNAME_ENV} and {PASSWORD_ENV} "
                f"(or {PASSWORD_FILE_ENV})"
            )
        if not user or secret is None:
            missing = "username" if not user else "password"
            raise CredentialsError(
                f"Sectigo credentials need both username and password ({missing} missing)"
            )
        return cls(user, secret, source)


def _read_secret_file(path: Path) -> Secret:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"password file {path}: cannot read it ({type(exc).__name__})"
        ) from None
    value = text.removesuffix("\n").removesuffix("\r")
    if not value:
        raise CredentialsError(f"password file {path}: is empty")
    return Secret(value)
