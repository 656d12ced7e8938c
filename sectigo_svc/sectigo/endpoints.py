"""The Sectigo endpoints the client calls: name (for logs and errors), method, path, and safety.

``mutating`` marks calls that create or change something at Sectigo (a batch, a revocation): the
retry policy re-sends those only when the request provably never left. Login and refresh are not
mutating: a repeated login costs nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Auth(enum.Enum):
    """How a call authenticates, which also decides what a 401 or 307 means."""

    LOGIN = "login"
    REFRESH = "refresh"
    BEARER = "bearer"


@dataclass(frozen=True)
class Endpoint:
    """One API operation. ``path`` may hold ``{name}`` placeholders for integer ids."""

    name: str
    method: str
    path: str
    auth: Auth = Auth.BEARER
    mutating: bool = False

    def render(self, **ids: int) -> str:
        """The path with its ids filled in; ids must be non-negative integers (never text)."""
        for key, value in ids.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{key}: must be a non-negative integer, got {value!r}")
        return self.path.format(**ids)


LOGIN = Endpoint("login", "POST", "/auth/pwd", auth=Auth.LOGIN)
REFRESH = Endpoint("refresh", "POST", "/auth/refresh", auth=Auth.REFRESH)
CREATE_BATCH = Endpoint(
    "create_batch", "PUT", "/api/v1/batches/createSingleCertBatch", mutating=True
)
UPLOAD_BATCH = Endpoint("upload_batch", "POST", "/api/v1/batches/upload", mutating=True)
LIST_BATCHES = Endpoint("list_batches", "GET", "/api/v1/batches")
BATCH_DETAIL = Endpoint("batch_detail", "GET", "/api/v1/batches/{batch_id}")
BATCH_STATUS = Endpoint("batch_status", "GET", "/api/v1/batches/{batch_id}/status")
PROCESSING_INFO = Endpoint("processing_info", "GET", "/api/v1/batches/{batch_id}/processing_info")
DOWNLOAD = Endpoint("download", "GET", "/api/v1/batches/{batch_id}/download")
DEVICES = Endpoint("devices", "GET", "/api/v1/devices")
AUTHORITIES = Endpoint("authorities", "GET", "/api/v1/authorities/allowed")
BALANCE = Endpoint("balance", "GET", "/api/v1/authorities/{authority_id}/balanceavailable")
PROFILES = Endpoint("profiles", "GET", "/api/v1/profiles")
PROFILE_DETAIL = Endpoint("profile_detail", "GET", "/api/v1/profiles/{profile_id}")
PROFILE_PARAMETERS = Endpoint(
    "profile_parameters", "GET", "/api/v1/profiles/{profile_id}/parameters"
)
ORGANIZATION = Endpoint("organization", "GET", "/api/v1/organizations/user")
FIND = Endpoint("find", "POST", "/api/v1/certificates/find")
REVOKE = Endpoint("revoke", "POST", "/api/v1/certificates/{profile_id}/revoke", mutating=True)

ALL: tuple[Endpoint, ...] = tuple(v for v in tuple(globals().values()) if isinstance(v, Endpoint))
"""Every endpoint above, in the order defined."""
