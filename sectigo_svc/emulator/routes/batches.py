"""``/api/v1/batches``: order certificates (by parameters or CSR), follow and download them."""

from __future__ import annotations

import json
from typing import Any

from sectigo_svc.emulator import errors, multipart
from sectigo_svc.emulator.bundles import Pkcs12Encryption, build_zip
from sectigo_svc.emulator.ca import CertificateAuthority
from sectigo_svc.emulator.catalog import (
    ParameterError,
    Profile,
    Profiles,
    check_parameters,
)
from sectigo_svc.emulator.config import StatusText
from sectigo_svc.emulator.http import Request, Response, Router
from sectigo_svc.emulator.issuance import (
    CsrError,
    Issuer,
    SubjectOutOfBounds,
    check_keys,
    read_csrs,
)
from sectigo_svc.emulator.ledger import BatchView, InsufficientLicences, Ledger, Settled
from sectigo_svc.emulator.settings import LiveSettings
from sectigo_svc.emulator.stats import Stats

PROSE = {
    "CREATED": "Processing",
    "PROCESSING": "Processing",
    "READY_FOR_DOWNLOAD": "Ready for download",
    "COLLECTED": "Ready for download",
    "REJECTED": "Not Acceptable. Status: Rejected",
    "BROKEN": "Failed",
}
_UPLOAD_FIELDS = {"profileId", "batchType", "profileParams", "batchName"}


def _integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise errors.invalid(f"{field} must be an integer")
    try:
        return int(value)
    except ValueError as exc:
        raise errors.invalid(f"{field} must be an integer") from exc


def _upload_batch_name(batch_request: dict[str, Any], files: multipart.Part) -> object:
    """The name an upload's batch gets: its ``batchName``, else one made from the file name."""
    return batch_request.get("batchName") or f"CSR upload {files.filename or 'files'}"


def create_batch_name(request: Request) -> str | None:
    """The ``batchName`` a createSingleCertBatch body asks for, if it can be read."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    name = body.get("batchName") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


def upload_name(request: Request) -> str | None:
    """The name an upload's batch would get, if its multipart body can be read."""
    try:
        parts = multipart.parse(request.headers, request.body)
        batch_request = json.loads(parts["csrBatchRequest"].data)
        files = parts["files"]
    except (multipart.MultipartError, KeyError, ValueError):
        return None
    if not isinstance(batch_request, dict):
        return None
    name = _upload_batch_name(batch_request, files)
    return name if isinstance(name, str) else None


class BatchRoutes:
    def __init__(
        self,
        ledger: Ledger,
        profiles: Profiles,
        issuer: Issuer,
        ca: CertificateAuthority,
        settings: LiveSettings,
        stats: Stats,
        status_text: StatusText,
        pkcs12_encryption: Pkcs12Encryption,
    ) -> None:
        self._ledger = ledger
        self._profiles = profiles
        self._issuer = issuer
        self._ca = ca
        self._settings = settings
        self._stats = stats
        self._status_text = status_text
        self._pkcs12 = pkcs12_encryption

    def register(self, router: Router) -> None:
        base = "/api/v1/batches"
        router.add(
            "create_batch",
            "PUT",
            f"{base}/createSingleCertBatch",
            self.create,
            batch_name=create_batch_name,
        )
        router.add("upload_batch", "POST", f"{base}/upload", self.upload, batch_name=upload_name)
        router.add("list_batches", "GET", base, self.list)
        router.add("batch_detail", "GET", f"{base}/{{batch_id}}", self.detail)
        router.add("batch_status", "GET", f"{base}/{{batch_id}}/status", self.status)
        router.add("processing_info", "GET", f"{base}/{{batch_id}}/processing_info", self.info)
        router.add("download", "GET", f"{base}/{{batch_id}}/download", self.download)

    def _record(
        self, profile: Profile, name: str, size: int, result: Settled, pw: str | None
    ) -> Response:
        delay = self._settings.get().issue_delay
        try:
            created = self._ledger.create(profile, name, size, result, pw, delay)
        except InsufficientLicences as exc:
            raise errors.no_licences(str(exc)) from exc
        self._stats.event("batches_created")
        return Response.json(200, created)

    def create(self, request: Request) -> Response:
        body = request.json(errors.unsupported, errors.invalid)
        if not isinstance(body, dict):
            raise errors.invalid("The body must be a JSON object")
        unknown = set(body) - {"authorityId", "batchName", "profileParams"}
        if unknown:
            raise errors.invalid(f"Unknown field: {sorted(unknown)[0]}")
        authority_id = _integer(body.get("authorityId"), "authorityId")
        name = body.get("batchName")
        if not isinstance(name, str) or not name.strip():
            raise errors.invalid("batchName must be a non-empty string")
        profile = self._profiles.by_authority(authority_id)
        if profile is None:
            raise errors.not_found(f"Unknown authority: {authority_id}")
        try:
            params = check_parameters(profile, body.get("profileParams"))
        except ParameterError as exc:
            raise errors.invalid(str(exc)) from exc
        try:
            result = self._issuer.for_params(profile, params)
        except SubjectOutOfBounds as exc:
            raise errors.internal() from exc
        return self._record(profile, name, 1, result, params["pkcs12Password"])

    def upload(self, request: Request) -> Response:
        try:
            parts = multipart.parse(request.headers, request.body)
        except multipart.MultipartError as exc:
            raise errors.invalid(str(exc)) from exc
        for required in ("profileId", "csrBatchRequest", "files"):
            if required not in parts:
                raise errors.invalid(f"The multipart field {required} is required")
        profile_id = _integer(parts["profileId"].data.decode(errors="replace").strip(), "profileId")
        try:
            batch_request = json.loads(parts["csrBatchRequest"].data)
        except ValueError as exc:
            raise errors.invalid("csrBatchRequest is not valid JSON") from exc
        if not isinstance(batch_request, dict) or set(batch_request) - _UPLOAD_FIELDS:
            raise errors.invalid(
                f"csrBatchRequest accepts only {', '.join(sorted(_UPLOAD_FIELDS))}"
            )
        if _integer(batch_request.get("profileId", profile_id), "profileId") != profile_id:
            raise errors.invalid("csrBatchRequest.profileId differs from profileId")
        profile = self._profiles.by_id(profile_id)
        if profile is None:
            raise errors.not_found(f"Unknown profile: {profile_id}")
        params = batch_request.get("profileParams", {})
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise errors.invalid("profileParams must be an object of strings")
        files = parts["files"]
        try:
            csrs = read_csrs(files.data, files.content_type)
            check_keys(profile, csrs)
        except CsrError as exc:
            raise errors.invalid(str(exc)) from exc
        name = _upload_batch_name(batch_request, files)
        if not isinstance(name, str):
            raise errors.invalid("batchName must be a string")
        try:
            result = self._issuer.for_csrs(csrs)
        except SubjectOutOfBounds as exc:
            raise errors.internal() from exc
        return self._record(profile, name, len(csrs), result, None)

    def list(self, request: Request) -> Response:
        offset = _integer(request.first("offset") or "0", "offset")
        limit = _integer(request.first("limit") or "100", "limit")
        if offset < 0 or not 1 <= limit <= 1000:
            raise errors.invalid("offset must be >= 0 and limit between 1 and 1000")
        settings = self._settings.get()
        if settings.ignore_list_filters:
            found = self._ledger.list_batches(None, None, settings.visibility_lag)
        else:
            found = self._ledger.list_batches(
                request.first("batchName"), request.first("status"), settings.visibility_lag
            )
        return Response.json(200, found[offset : offset + limit])

    def _batch(self, request: Request) -> BatchView:
        raw = request.params["batch_id"]
        if not raw.isdigit():
            raise errors.invalid(f"Batch id must be a number, not {raw!r}")
        found = self._ledger.view(int(raw), self._settings.get().visibility_lag)
        if found is None:
            raise errors.not_found(f"Batch {raw} not found")
        return found

    def detail(self, request: Request) -> Response:
        return Response.json(200, self._batch(request).detail)

    def status(self, request: Request) -> Response:
        status = self._batch(request).status
        text = PROSE.get(status, status) if self._status_text == "prose" else status
        return Response(200, text.encode(), "text/plain;charset=UTF-8")

    def info(self, request: Request) -> Response:
        return Response.json(200, self._batch(request).processing_info)

    def download(self, request: Request) -> Response:
        batch = self._batch(request)
        if not batch.downloadable:
            raise errors.not_ready(f"Batch {batch.batch_id} is {batch.status}, not ready")
        archive = build_zip(list(batch.items), self._ca.chain(), batch.password or "", self._pkcs12)
        self._ledger.record_download(batch.batch_id)
        disposition = f'attachment; filename="{batch.batch_id}.zip"'
        return Response(
            200, archive, "application/octet-stream", (("Content-Disposition", disposition),)
        )
