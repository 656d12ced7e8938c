"""RevokeCertificate with CERTIFICATE_HOLD and REMOVE_FROM_CRL: a certificate on hold is its own
state (ON_HOLD), a release returns it to READY, and a release of anything else is refused before
Sectigo sees it."""

from __future__ import annotations

import threading
from typing import cast

import grpc
from cryptography import x509

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import (
    ON_HOLD,
    READY,
    REGISTRATION,
    REVOKED,
    EmulatorApi,
    Stub,
    download,
    failure,
    issue_ready,
    poll,
    server_key_request,
)

HOLD = pb.REVOCATION_REASON_CERTIFICATE_HOLD
RELEASE = pb.REVOCATION_REASON_REMOVE_FROM_CRL


def _crl_reason(sectigo: EmulatorApi, serial: str) -> x509.ReasonFlags | None:
    """The reason ``serial`` is listed with in the emulator's CRL; None when it is not listed."""
    entry = sectigo.crl().get_revoked_certificate_by_serial_number(int(serial, 16))
    if entry is None:
        return None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def _revoke(
    stub: Stub, request_id: str, reason: pb.RevocationReason.ValueType
) -> pb.CertificateRequest:
    reply = stub.RevokeCertificate(
        pb.RevokeCertificateRequest(request_id=request_id, reason=reason), timeout=10
    )
    return reply.request


def _get(stub: Stub, request_id: str) -> pb.CertificateRequest:
    return stub.GetCertificateRequest(pb.GetCertificateRequestRequest(request_id=request_id))


def test_hold_then_release_returns_the_request_to_ready(service: Service) -> None:
    stub, sectigo = service.stub(), service.sectigo
    issue_ready(stub, server_key_request("hold-1", "hold.example.com"))
    serial = _get(stub, "hold-1").serial_number

    held = _revoke(stub, "hold-1", HOLD)

    assert held.state == ON_HOLD
    assert "hold" in held.reason
    assert _get(stub, "hold-1").state == ON_HOLD
    assert [i["status"] for i in sectigo.find_serial(serial)] == ["ON_HOLD"]
    assert _crl_reason(sectigo, serial) == x509.ReasonFlags.certificate_hold
    # The certificate on hold is still the one issued; the reply says it is not valid now.
    got = download(stub, "hold-1")
    assert (got.serial_number, got.state) == (serial, ON_HOLD)
    # A repeated hold is answered from the store: nothing more is sent.
    assert _revoke(stub, "hold-1", HOLD).state == ON_HOLD
    assert sectigo.requests_to("revoke") == 1
    # The tracker has nothing to do for it: not active, not leased.
    key = (REGISTRATION, "hold-1")
    assert key not in {r.key for r in service.app.store.active()}
    assert service.app.store.claim([key]) == []

    released = _revoke(stub, "hold-1", RELEASE)

    assert released.state == READY
    assert _get(stub, "hold-1").state == READY
    assert [i["status"] for i in sectigo.find_serial(serial)] == ["ISSUED"]
    assert _crl_reason(sectigo, serial) is None
    assert download(stub, "hold-1").state == READY
    assert sectigo.requests_to("revoke") == 2
    history = [v.state.value for v in service.app.store.history(REGISTRATION, "hold-1", 0)]
    assert history[-3:] == ["READY", "ON_HOLD", "READY"]
    audit = [e.detail for e in service.app.store.audit_log(REGISTRATION, "hold-1")]
    assert any("reason=8" in d for d in audit)


def test_remove_from_crl_of_a_valid_certificate_is_refused_and_nothing_is_sent(
    service: Service,
) -> None:
    stub, sectigo = service.stub(), service.sectigo
    issue_ready(stub, server_key_request("hold-valid", "valid.example.com"))
    serial = _get(stub, "hold-valid").serial_number
    before = sectigo.stats()["requests"]

    by_request = failure(lambda: _revoke(stub, "hold-valid", RELEASE))
    by_serial = failure(
        lambda: stub.RevokeCertificate(
            pb.RevokeCertificateRequest(serial_number=serial, reason=RELEASE)
        )
    )

    for refused in (by_request, by_serial):
        assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "READY" in refused.details and "ON_HOLD" in refused.details
    after = sectigo.stats()["requests"]
    assert after.get("revoke", 0) == 0
    assert after.get("find", 0) == before.get("find", 0)
    assert _get(stub, "hold-valid").state == READY
    assert [i["status"] for i in sectigo.find_serial(serial)] == ["ISSUED"]
    assert _crl_reason(sectigo, serial) is None


def test_remove_from_crl_of_a_revoked_certificate_is_refused(service: Service) -> None:
    stub, sectigo = service.stub(), service.sectigo
    issue_ready(stub, server_key_request("hold-gone", "gone.example.com"))
    serial = _revoke(stub, "hold-gone", pb.REVOCATION_REASON_KEY_COMPROMISE).serial_number

    refused = failure(lambda: _revoke(stub, "hold-gone", RELEASE))

    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "REVOKED" in refused.details
    assert sectigo.requests_to("revoke") == 1
    assert _get(stub, "hold-gone").state == REVOKED
    assert _crl_reason(sectigo, serial) == x509.ReasonFlags.key_compromise


def test_a_certificate_on_hold_can_be_revoked_for_good(service: Service) -> None:
    stub, sectigo = service.stub(), service.sectigo
    issue_ready(stub, server_key_request("hold-end", "end.example.com"))
    serial = _revoke(stub, "hold-end", HOLD).serial_number

    revoked = _revoke(stub, "hold-end", pb.REVOCATION_REASON_KEY_COMPROMISE)

    assert revoked.state == REVOKED
    assert [i["status"] for i in sectigo.find_serial(serial)] == ["REVOKED"]
    assert _crl_reason(sectigo, serial) == x509.ReasonFlags.key_compromise
    # REVOKED is final: neither a release nor a new hold changes it.
    assert failure(lambda: _revoke(stub, "hold-end", RELEASE)).code == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert _revoke(stub, "hold-end", HOLD).state == REVOKED
    assert sectigo.requests_to("revoke") == 2
    assert _crl_reason(sectigo, serial) == x509.ReasonFlags.key_compromise


def test_admin_holds_and_releases_a_certificate_this_service_did_not_issue(
    service: Service,
) -> None:
    sectigo, admin = service.sectigo, service.stub("admin")
    batch_id = sectigo.create_batch("outside.example.com", "another-users-pw")
    poll(
        lambda: True if sectigo.batch(batch_id)["status"] == "READY_FOR_DOWNLOAD" else None,
        "the outside batch to be issued",
    )
    (item,) = sectigo.find_common_name("outside.example.com")
    serial = item["serialNumber"]

    def revoke(reason: pb.RevocationReason.ValueType) -> pb.RevokeCertificateResponse:
        return admin.RevokeCertificate(
            pb.RevokeCertificateRequest(serial_number=serial, reason=reason), timeout=10
        )

    not_held = failure(lambda: revoke(RELEASE))
    assert not_held.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "not on hold" in not_held.details
    assert sectigo.requests_to("revoke") == 0

    assert revoke(HOLD).serial_number == serial
    assert [i["status"] for i in sectigo.find_serial(serial)] == ["ON_HOLD"]
    assert _crl_reason(sectigo, serial) == x509.ReasonFlags.certificate_hold

    assert not revoke(RELEASE).HasField("request")
    assert [i["status"] for i in sectigo.find_serial(serial)] == ["ISSUED"]
    assert _crl_reason(sectigo, serial) is None
    assert sectigo.requests_to("revoke") == 2


def test_a_late_hold_answer_does_not_undo_a_later_release(service: Service) -> None:
    """The first hold's answer comes late (Sectigo took it at once); meanwhile the caller holds
    again and releases. The late answer must not write ON_HOLD over the release: the request
    follows Sectigo, which lists the certificate as valid."""
    stub = service.stub()
    issue_ready(stub, server_key_request("late-hold", "late-hold.example.com"))
    serial = stub.GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="late-hold"), timeout=5
    ).serial_number
    sectigo = service.sectigo
    sectigo.add_fault(kind="slow", latency_ms=2000, count=1, routes=["revoke"])
    first: dict[str, str] = {}

    def slow_hold() -> None:
        try:
            stub.RevokeCertificate(
                pb.RevokeCertificateRequest(request_id="late-hold", reason=HOLD), timeout=10
            )
            first["code"] = "OK"
        except grpc.RpcError as exc:
            first["code"] = cast(grpc.Call, exc).code().name

    late = threading.Thread(target=slow_hold)
    late.start()
    poll(lambda: sectigo.requests_to("revoke") > 0 or None, "the first hold to reach Sectigo")
    stub.RevokeCertificate(
        pb.RevokeCertificateRequest(request_id="late-hold", reason=HOLD), timeout=10
    )
    stub.RevokeCertificate(
        pb.RevokeCertificateRequest(request_id="late-hold", reason=RELEASE), timeout=10
    )
    late.join()

    final = stub.GetCertificateRequest(
        pb.GetCertificateRequestRequest(request_id="late-hold"), timeout=5
    )
    assert [c["status"] for c in sectigo.find_serial(serial)] == ["ISSUED"]
    assert final.state == READY, final.reason
    assert first["code"] == "OK"
