"""Which versions of the CertificateAuthority API the service speaks, and the caller's stated one.

Clients state theirs in the ``sectigo-ca-api-version`` request header, ``"<major>.<minor>"``.
Every minor version of a major the service serves is served: within a major, changes are only
additive and unknown fields are ignored, so an older or newer minor works. A different major, or
a value that is not a version, is refused with FAILED_PRECONDITION naming the versions served. A
call without the header (grpcurl, clients older than the header) is served as the current major.
Each distinct version stated is logged once, and calls are counted by version.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable

import structlog

from sectigo.ca.v1 import MAJOR, VERSION, VERSION_HEADER
from sectigo_svc.domain.errors import FailedPrecondition

SERVED_MAJORS = (MAJOR,)
# Versions remembered (logged once, counted under their own label); later ones count as "other".
REMEMBERED_VERSIONS = 32
MISSING = "none"
OTHER = "other"
UNSUPPORTED = "unsupported"
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_SHOWN_CHARS = 40


class ApiVersions:
    """Checks the version each call states. ``count(label)`` is called once per call with the
    stated version: :data:`MISSING` without the header, :data:`UNSUPPORTED` for a refused one,
    :data:`OTHER` for a served one seen after :data:`REMEMBERED_VERSIONS` others. Thread-safe."""

    def __init__(self, count: Callable[[str], None] = lambda label: None) -> None:
        self._count = count
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._log = structlog.get_logger("sectigo_svc.rpc")

    def check(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        """Raise FailedPrecondition unless the stated version (if any) is one the service serves."""
        stated = next((value for key, value in metadata if key == VERSION_HEADER), None)
        if stated is None:
            self._count(MISSING)
            return
        text = stated if isinstance(stated, str) else stated.decode("ascii", "replace")
        match = _VERSION.fullmatch(text)
        served = match is not None and int(match.group(1)) in SERVED_MAJORS
        self._count(self._first_sight(text, served))
        if not served:
            raise FailedPrecondition(
                f"the client speaks API version {_shown(text)}; this service speaks "
                f"{served_versions()} (any {' or '.join(f'{m}.x' for m in SERVED_MAJORS)} "
                "client is served)"
            )

    def _first_sight(self, text: str, served: bool) -> str:
        """The label to count ``text`` under; logs it the first time it is seen."""
        label = text if served else UNSUPPORTED
        with self._lock:
            if text in self._seen:
                return label
            if len(self._seen) >= REMEMBERED_VERSIONS:
                return OTHER if served else UNSUPPORTED
            self._seen.add(text)
        self._log.info(
            "client api version seen",
            client_api_version=_shown(text),
            service_api_version=VERSION,
            served=served,
        )
        return label


def served_versions() -> str:
    """The versions the service speaks, for messages: e.g. ``sectigo.ca.v1 (1.0)``."""
    return f"sectigo.ca.v{MAJOR} ({VERSION})"


def _shown(text: str) -> str:
    clipped = text[:_SHOWN_CHARS] + ("..." if len(text) > _SHOWN_CHARS else "")
    return repr(clipped)
