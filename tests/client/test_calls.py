"""The read, search and revoke verbs of the client against a real service."""

from __future__ import annotations

import pytest

from sectigo_client import (
    ALL_OWNERS,
    CertificateAuthorityClient,
    FailedPrecondition,
    PermissionDenied,
    RequestState,
    RevocationReason,
)
from tests.client.conftest import ClientFactory, environment
from tests.service.conftest import Service
from tests.service.helpers import REGISTRATION, WAIT


def test_from_env_reads_the_documented_variables(service: Service) -> None:
    with CertificateAuthorityClient.from_env(environment(service.target, service.pki)) as ca:
        assert ca.licenses().ordered > 0


def test_list_follows_pages_and_filters(client_factory: ClientFactory) -> None:
    ca = client_factory()
    ids = [ca.issue(common_name=f"list{i}.example.com").request_id for i in range(3)]
    for request_id in ids:
        ca.wait(request_id, timeout=WAIT)

    paged = [r.request_id for r in ca.list(page_size=1)]
    only = list(ca.list(common_name="list1.example.com", states=[RequestState.READY]))
    none = list(ca.list(states=[RequestState.REJECTED]))
    everyone = list(client_factory("admin").list(owner=ALL_OWNERS))

    assert paged == ids[::-1], "newest first, across pages of one"
    assert [r.request_id for r in only] == [ids[1]]
    assert none == []
    assert {r.owner for r in everyone} == {REGISTRATION}
    with pytest.raises(PermissionDenied):
        list(ca.list(owner=ALL_OWNERS))


def test_find_and_revoke_by_request_then_by_serial(client_factory: ClientFactory) -> None:
    ca = client_factory()
    first = ca.issue(common_name="revoke.example.com")
    second = ca.issue(common_name="revoke2.example.com")
    serial = ca.wait(first.request_id, timeout=WAIT).serial_number
    other = ca.wait(second.request_id, timeout=WAIT).serial_number

    found = ca.find(common_name="revoke.example.com")
    revoked = ca.revoke(first.request_id, reason="keyCompromise")
    again = ca.revoke(first.request_id, reason=RevocationReason.KEY_COMPROMISE)
    by_serial = ca.revoke(serial_number=other.lower(), reason=RevocationReason.SUPERSEDED)

    assert [(c.serial_number, c.status) for c in found] == [(serial, "ISSUED")]
    assert revoked.serial_number == serial
    assert revoked.record is not None and revoked.record.state is RequestState.REVOKED
    assert again.serial_number == serial, "revoking twice is harmless"
    assert by_serial.serial_number == other
    assert ca.get(second.request_id).state is RequestState.REVOKED
    assert ca.find(serial_number=serial)[0].status == "REVOKED"
    with pytest.raises(PermissionDenied):
        client_factory("verification").revoke(second.request_id)


def test_revoking_before_ready_is_a_failed_precondition(
    service: Service, client_factory: ClientFactory
) -> None:
    service.sectigo.settings(stuck=True)
    ca = client_factory()
    record = ca.issue(common_name="early.example.com")

    with pytest.raises(FailedPrecondition):
        ca.revoke(record.request_id)
    with pytest.raises(FailedPrecondition):
        ca.download(record.request_id)


def test_account_reads(client_factory: ClientFactory) -> None:
    ca = client_factory("verification")

    authorities = ca.authorities()
    licenses = ca.licenses()
    profiles = ca.profiles()
    profile = ca.profile(85)

    assert [(a.id, a.profile_id) for a in authorities] == [(42, 42), (85, 85)]
    assert licenses.ordered == 200 and licenses.issued == 0
    assert {p.profile_id for p in profiles} == {42, 85}
    assert profile.name == "TRISA End Entity"
    assert {"commonName", "countryName"} <= {p.name for p in profile.parameters}
    assert next(p for p in profile.parameters if p.name == "commonName").required
