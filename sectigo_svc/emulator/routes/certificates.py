"""``/api/v1/certificates``: find and revoke issued certificates; the CA's CRL and chain."""

from __future__ import annotations

import re

from sectigo_svc.emulator import errors
from sectigo_svc.emulator.ca import CertificateAuthority
from sectigo_svc.emulator.http import Request, Response, Router
from sectigo_svc.emulator.ledger import AlreadyRevoked, Ledger, RevocationRefused

# RFC 5280 CRLReason codes; 7 is unused by the RFC and refused.
REASON_CODES = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9, 10})
_HEX = re.compile(r"^[0-9A-Fa-f]{1,40}$")


def _serial(value: object) -> int:
    if not isinstance(value, str) or not _HEX.match(value):
        raise errors.invalid("serialNumber must be a hexadecimal string")
    return int(value, 16)


class CertificateRoutes:
    def __init__(self, ledger: Ledger, ca: CertificateAuthority) -> None:
        self._ledger = ledger
        self._ca = ca

    def register(self, router: Router) -> None:
        router.add("find", "POST", "/api/v1/certificates/find", self.find)
        router.add("revoke", "POST", "/api/v1/certificates/{profile_id}/revoke", self.revoke)
        router.add("crl", "GET", "/crl/issuing.crl", self.crl, authenticated=False)
        router.add("ca", "GET", "/ca/chain.pem", self.chain, authenticated=False)

    def find(self, request: Request) -> Response:
        body = request.json(errors.unsupported, errors.invalid)
        if not isinstance(body, dict) or set(body) - {"commonName", "serialNumber"}:
            raise errors.invalid("The body accepts only commonName and serialNumber")
        common_name = body.get("commonName") or None
        raw_serial = body.get("serialNumber") or None
        if common_name is None and raw_serial is None:
            raise errors.invalid("Give commonName or serialNumber")
        if common_name is not None and not isinstance(common_name, str):
            raise errors.invalid("commonName must be a string")
        serial = _serial(raw_serial) if raw_serial is not None else None
        items = self._ledger.find(common_name, serial)
        return Response.json(200, {"totalCount": len(items), "items": items})

    def revoke(self, request: Request) -> Response:
        raw_profile = request.params["profile_id"]
        if not raw_profile.isdigit():
            raise errors.invalid(f"Profile id must be a number, not {raw_profile!r}")
        body = request.json(errors.unsupported, errors.invalid)
        if not isinstance(body, dict):
            raise errors.invalid("The body must be a JSON object")
        if "serialNumber" not in body:
            raise errors.invalid("serialNumber is required")
        serial = _serial(body["serialNumber"])
        reason = body.get("reasonCode", 0)
        if isinstance(reason, bool) or not isinstance(reason, int) or reason not in REASON_CODES:
            raise errors.invalid(f"reasonCode {reason!r} is not an RFC 5280 reason code in use")
        try:
            revoked = self._ledger.revoke(int(raw_profile), serial, reason)
        except AlreadyRevoked as exc:
            raise errors.already_revoked(str(exc)) from exc
        # NotOnHold (a removeFromCRL for a certificate not on hold) is a validation error too.
        except RevocationRefused as exc:
            raise errors.invalid(str(exc)) from exc
        if not revoked:
            raise errors.not_found(f"Certificate {serial:X} not found")
        return Response.json(200, {"success": True})

    def crl(self, _: Request) -> Response:
        return Response(200, self._ca.crl(self._ledger.revocations()), "application/pkix-crl")

    def chain(self, _: Request) -> Response:
        return Response(200, self._ca.chain_pem(), "application/x-pem-file")
