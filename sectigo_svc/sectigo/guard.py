"""The environment guard: which endpoints each environment may talk to.

A mix-up between environments either spends paid licences from a test run or points production at
a fake CA, so the transport refuses to be built for an endpoint its environment does not allow:

- ``production``: ``https`` and the host exactly ``iot.sectigo.com`` (default port only);
- ``staging``: any host that does not end in ``sectigo.com``;
- ``testing``: loopback only: ``localhost``, ``127.0.0.0/8`` or ``::1``.

In every environment the scheme is ``http`` or ``https`` and the URL carries no user info, query or
fragment (credentials never travel in a URL).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sectigo_svc.sectigo.config import Environment
from sectigo_svc.sectigo.errors import EnvironmentGuardError

PRODUCTION_HOST = "iot.sectigo.com"


def check_environment(endpoint: str, environment: Environment) -> None:
    """Raise :class:`EnvironmentGuardError` unless ``endpoint`` is allowed in ``environment``."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise EnvironmentGuardError(f"endpoint: not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise EnvironmentGuardError(f"endpoint: scheme must be http or https, not {parts.scheme!r}")
    if not host:
        raise EnvironmentGuardError(f"endpoint: {endpoint!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise EnvironmentGuardError("endpoint: must not carry user info; use credentials instead")
    if parts.query or parts.fragment:
        raise EnvironmentGuardError("endpoint: must not carry a query or fragment")

    if environment is Environment.PRODUCTION:
        if parts.scheme != "https" or host != PRODUCTION_HOST or port not in (None, 443):
            raise EnvironmentGuardError(
                f"endpoint: production talks only to https://{PRODUCTION_HOST}, "
                f"not {endpoint!r}; set the environment to staging or testing for other hosts"
            )
    elif environment is Environment.STAGING:
        if host.rstrip(".").endswith("sectigo.com"):
            raise EnvironmentGuardError(
                f"endpoint: staging must never reach a sectigo.com host ({host!r}); "
                "use the production environment for the real Sectigo"
            )
    elif not is_loopback(host):
        raise EnvironmentGuardError(
            f"endpoint: testing talks only to loopback (localhost, 127.0.0.0/8, ::1), not {host!r}"
        )


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: the only hosts the testing environment may reach."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.IPv4Network("127.0.0.0/8")
    return address == ipaddress.IPv6Address("::1")
