"""A lookup that cannot read Sectigo's whole list proves nothing: at an account whose batch list
ignores its name filter and runs past what a lookup reads, a request whose batch lies beyond is
not ordered again; it waits, saying why."""

from __future__ import annotations

import pytest

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo_svc.domain import submission
from sectigo_svc.domain.models import batch_name_for
from tests.conftest import EmulatorFactory
from tests.service.conftest import ServiceFactory
from tests.service.helpers import FAILED, PENDING, READY, poll, server_key_request, wait_for

OWNER = "spiffe://sectigo-svc.test/registration"


def test_a_batch_beyond_what_a_lookup_reads_is_never_ordered_again(
    service_factory: ServiceFactory,
    emulator_factory: EmulatorFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(submission, "MAX_LIST_PAGES", 1)  # a lookup reads 100 batches
    service = service_factory(emulator=emulator_factory(balances=((42, 1000),)))
    sectigo = service.sectigo
    sectigo.settings(ignore_list_filters=True)
    for number in range(120):  # other users' batches, listed first
        sectigo.create_batch(f"other-{number}.example.com", "Password-123")
    # The request's own batch, ordered before its store lost it, lies past the first 100.
    name = batch_name_for(service.config.batch_prefix, OWNER, "beyond")
    first = sectigo.create_batch("beyond.example.com", "Password-123", batch_name=name)
    created = sectigo.batches_created()
    stub = service.stub()
    stub.IssueCertificate(server_key_request("beyond", "beyond.example.com"), timeout=10)

    def explained() -> pb.CertificateRequest | None:
        got = stub.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="beyond"), timeout=5
        )
        return got if "absence is not proved" in got.reason else None

    held = poll(explained, "the request to say why it waits")
    assert held.state == PENDING
    assert sectigo.batches_created() == created, "ordered on a lookup that proved nothing"

    monkeypatch.setattr(submission, "MAX_LIST_PAGES", 2)  # now the lookup reaches it
    # Adopted (another user's password protects that PKCS#12, so it may not open here).
    done = wait_for(stub, "beyond", [READY, FAILED], timeout=60)
    assert done.batch_id == first
    assert sectigo.batches_created() == created
