"""RevokeCertificate: flows to Sectigo (find, CRL), idempotent, owner-only unless admin."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from cryptography import x509

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.service.conftest import Service, ServiceFactory
from tests.service.helpers import (
    ADMIN,
    PROCESSING,
    REGISTRATION,
    REVOKED,
    VERIFICATION,
    EmulatorApi,
    failure,
    issue_ready,
    policy_file,
    poll,
    server_key_request,
    wait_for,
)


def _revoked_in_crl(sectigo: EmulatorApi, serial: str) -> x509.ReasonFlags | None:
    """The CRL reason of ``serial`` in the emulator's CRL, or None when it is not listed."""
    entry = sectigo.crl().get_revoked_certificate_by_serial_number(int(serial, 16))
    if entry is None:
        return None
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:  # RFC 5280: absent means unspecified
        return x509.ReasonFlags.unspecified


def test_revoke_by_request_id_reaches_sectigo_and_is_idempotent(service: Service) -> None:
    stub = service.stub()
    issue_ready(stub, server_key_request("rev-1", "rev.example.com"))
    before = stub.FindCertificates(pb.FindCertificatesRequest(common_name="rev.example.com"))
    assert [c.status for c in before.certificates] == ["ISSUED"]

    revoked = stub.RevokeCertificate(
        pb.RevokeCertificateRequest(request_id="rev-1", reason=pb.REVOCATION_REASON_KEY_COMPROMISE)
    )

    serial = revoked.serial_number
    assert serial == before.certificates[0].serial_number
    assert revoked.request.state == REVOKED
    record = stub.GetCertificateRequest(pb.GetCertificateRequestRequest(request_id="rev-1"))
    assert record.state == REVOKED
    found = stub.FindCertificates(pb.FindCertificatesRequest(serial_number=serial.lower()))
    assert [(c.serial_number, c.status) for c in found.certificates] == [(serial, "REVOKED")]
    assert _revoked_in_crl(service.sectigo, serial) == x509.ReasonFlags.key_compromise

    again = stub.RevokeCertificate(
        pb.RevokeCertificateRequest(request_id="rev-1", reason=pb.REVOCATION_REASON_SUPERSEDED)
    )

    assert again.serial_number == serial
    assert again.request.state == REVOKED
    assert service.sectigo.requests_to("revoke") == 1
    # A revoked certificate can still be downloaded (e.g. to see what was revoked).
    got = stub.DownloadCertificate(pb.DownloadCertificateRequest(request_id="rev-1"))
    assert got.serial_number == serial
    revokes = [
        e for e in service.app.store.audit_log(REGISTRATION, "rev-1") if e.action == "revoke"
    ]
    assert revokes and all(e.identity == REGISTRATION for e in revokes)
    assert f"serial={serial}" in revokes[0].detail


def test_revoke_by_serial_is_for_the_owner_or_an_admin(
    service_factory: ServiceFactory, tmp_path: Path
) -> None:
    # verification may revoke here, so that only ownership stands in its way.
    grants = {
        "registration": ["issue", "read", "revoke"],
        "verification": ["issue", "read", "revoke"],
        "admin": ["admin"],
    }
    service = service_factory(policy_file=policy_file(tmp_path, grants))
    owner, other, admin = service.stub(), service.stub("verification"), service.stub("admin")
    mine = issue_ready(owner, server_key_request("rev-own", "own.example.com"))
    theirs = issue_ready(owner, server_key_request("rev-adm", "adm.example.com"))
    serial = wait_for(owner, mine.request_id, [pb.REQUEST_STATE_READY]).serial_number
    admin_serial = wait_for(owner, theirs.request_id, [pb.REQUEST_STATE_READY]).serial_number

    denied = failure(
        lambda: other.RevokeCertificate(pb.RevokeCertificateRequest(serial_number=serial))
    )
    by_owner = owner.RevokeCertificate(pb.RevokeCertificateRequest(serial_number=serial))
    by_admin = admin.RevokeCertificate(pb.RevokeCertificateRequest(serial_number=admin_serial))

    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert by_owner.serial_number == serial
    assert by_owner.request.owner == REGISTRATION
    assert by_admin.request.state == REVOKED
    assert wait_for(owner, "rev-adm", [REVOKED]).state == REVOKED
    for revoked in (serial, admin_serial):
        assert _revoked_in_crl(service.sectigo, revoked) is not None
    audit = [
        (e.identity, e.request_id) for e in service.app.store.audit_log() if e.action == "revoke"
    ]
    assert audit == [(REGISTRATION, "rev-own"), (ADMIN, "rev-adm")]
    assert all(e.identity != VERIFICATION for e in service.app.store.audit_log())


def test_revoke_of_a_request_that_is_not_ready_fails_precondition(
    service_factory: ServiceFactory, emulator_factory: EmulatorFactory
) -> None:
    service = service_factory(emulator=emulator_factory(stuck=True))
    stub = service.stub()
    stub.IssueCertificate(server_key_request("rev-early", "early.example.com"))
    wait_for(stub, "rev-early", [PROCESSING])

    early = failure(
        lambda: stub.RevokeCertificate(pb.RevokeCertificateRequest(request_id="rev-early"))
    )

    assert early.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "PROCESSING" in early.details
    assert service.sectigo.requests_to("revoke") == 0


def test_admin_revoke_of_a_serial_sectigo_does_not_know_is_not_found(service: Service) -> None:
    unknown = failure(
        lambda: service.stub("admin").RevokeCertificate(
            pb.RevokeCertificateRequest(serial_number="0A:BC:DE:F0")
        )
    )

    assert unknown.code == grpc.StatusCode.NOT_FOUND


def test_non_admin_revoke_of_a_serial_this_service_did_not_issue_is_denied(
    service: Service,
) -> None:
    denied = failure(
        lambda: service.stub().RevokeCertificate(pb.RevokeCertificateRequest(serial_number="ABCD"))
    )

    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert service.sectigo.requests_to("revoke") == 0


def test_concurrent_revokes_of_one_request_all_succeed_with_one_revocation(
    service: Service,
) -> None:
    stub = service.stub()
    issue_ready(stub, server_key_request("rev-many", "many.example.com"))
    start = threading.Barrier(8)

    def revoke(_: int) -> pb.RevokeCertificateResponse:
        start.wait(timeout=10)
        return stub.RevokeCertificate(
            pb.RevokeCertificateRequest(request_id="rev-many"), timeout=20
        )

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(revoke, range(8)))

    assert len({r.serial_number for r in replies}) == 1
    assert all(r.request.state == REVOKED for r in replies)
    found = service.sectigo.find_serial(replies[0].serial_number)
    assert [item["status"] for item in found] == ["REVOKED"]
    history = service.app.store.history(REGISTRATION, "rev-many", 0)
    assert [v.state.value for v in history].count("REVOKED") == 1


def test_admin_revokes_a_certificate_this_service_did_not_issue(service: Service) -> None:
    sectigo = service.sectigo
    batch_id = sectigo.create_batch("elsewhere.example.com", "another-users-pw")
    poll(
        lambda: True if sectigo.batch(batch_id)["status"] == "READY_FOR_DOWNLOAD" else None,
        "the outside batch to be issued",
    )
    (item,) = sectigo.find_common_name("elsewhere.example.com")

    revoked = service.stub("admin").RevokeCertificate(
        pb.RevokeCertificateRequest(
            serial_number=item["serialNumber"], reason=pb.REVOCATION_REASON_CESSATION_OF_OPERATION
        )
    )

    assert revoked.serial_number == item["serialNumber"]
    assert not revoked.HasField("request")
    assert [i["status"] for i in sectigo.find_serial(item["serialNumber"])] == ["REVOKED"]
    reason = _revoked_in_crl(sectigo, item["serialNumber"])
    assert reason == x509.ReasonFlags.cessation_of_operation
    (entry,) = service.app.store.audit_log()
    assert (entry.identity, entry.action) == (ADMIN, "revoke")
    assert item["serialNumber"] in entry.detail
