"""Issuance through three ``sectigo-svc serve`` processes on one database: identical calls make
one request and one batch, distinct calls one batch each, each batch downloaded once."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.x509.oid import NameOID

from sectigo.ca.v1 import ca_pb2 as pb
from tests.conftest import EmulatorFactory
from tests.fleet import Fleet
from tests.reliability.lab import Backstage
from tests.replicas.conftest import FleetFactory
from tests.service.helpers import (
    READY,
    TERMINAL,
    WAIT,
    Csr,
    csr_request,
    make_csr,
    public_der,
    server_key_request,
    wait_for,
)

DISTINCT = 300


def _common_name(certificate_pem: str) -> str:
    leaf = x509.load_pem_x509_certificate(certificate_pem.encode())
    return str(leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _settle(
    fleet: Fleet, request_ids: list[str], timeout: float
) -> dict[str, pb.CertificateRequest]:
    """Read every request, round robin over the replicas, until all are terminal."""
    replicas = itertools.cycle(fleet.replicas)
    final: dict[str, pb.CertificateRequest] = {}
    end = time.monotonic() + timeout
    while len(final) < len(request_ids):
        if time.monotonic() > end:
            stuck = [(i, fleet.lease_of(i)) for i in request_ids if i not in final]
            raise AssertionError(f"{len(stuck)} requests never settled: {stuck[:5]}")
        for request_id in request_ids:
            if request_id in final:
                continue
            found = next(replicas).stub.GetCertificateRequest(
                pb.GetCertificateRequestRequest(request_id=request_id), timeout=10
            )
            if found.state in TERMINAL:
                final[request_id] = found
        time.sleep(0.2)
    return final


def test_fifty_identical_issues_over_three_replicas_make_one_request_and_one_batch(
    fleet_factory: FleetFactory,
) -> None:
    fleet = fleet_factory(3)
    request = server_key_request("same-on-every-replica", "same.example.com")
    barrier = threading.Barrier(50)

    def issue(number: int) -> pb.CertificateRequest:
        stub = fleet[number % 3].stub
        barrier.wait()
        reply: pb.CertificateRequest = stub.IssueCertificate(request, timeout=WAIT)
        return reply

    with ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(issue, range(50)))

    # One request: every reply carries its creation time and generated password.
    assert len({reply.create_time.ToNanoseconds() for reply in replies}) == 1
    assert len({reply.pkcs12_password for reply in replies}) == 1
    wait_for(fleet[1].stub, request.request_id, [READY])
    batch_name = replies[0].batch_name
    assert len(fleet.sectigo.batches(batch_name)) == 1
    assert fleet.sectigo.batches_created() == 1


def test_three_hundred_distinct_issues_make_one_batch_each_downloaded_once(
    fleet_factory: FleetFactory, emulator_factory: EmulatorFactory
) -> None:
    """Both key modes, alternating: even numbers server-key, odd numbers CSR. The emulator makes
    P-256 server keys (RSA key generation would triple the time) and holds enough licences."""
    fleet = fleet_factory(
        3,
        emulator=emulator_factory(balances=((42, DISTINCT),), key_type="ec256"),
    )
    csrs: dict[str, Csr] = {}
    requests: list[pb.IssueCertificateRequest] = []
    for number in range(DISTINCT):
        request_id = f"distinct-{number}"
        common_name = f"host-{number}.example.com"
        if number % 2:
            csrs[request_id] = make_csr(common_name, [common_name])
            requests.append(csr_request(request_id, csrs[request_id].pem))
        else:
            requests.append(server_key_request(request_id, common_name, [common_name]))

    def issue(number: int) -> pb.CertificateRequest:
        reply: pb.CertificateRequest = fleet[number % 3].stub.IssueCertificate(
            requests[number], timeout=WAIT
        )
        return reply

    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(issue, range(DISTINCT)))
    ids = [request.request_id for request in requests]
    final = _settle(fleet, ids, timeout=60)

    unfinished = {
        i: (pb.RequestState.Name(r.state), r.reason) for i, r in final.items() if r.state != READY
    }
    assert not unfinished, f"{len(unfinished)} not READY: {list(unfinished.items())[:5]}"

    def download(number: int) -> pb.DownloadCertificateResponse:
        got: pb.DownloadCertificateResponse = fleet[(number + 1) % 3].stub.DownloadCertificate(
            pb.DownloadCertificateRequest(request_id=ids[number]), timeout=WAIT
        )
        return got

    with ThreadPoolExecutor(6) as pool:
        downloads = list(pool.map(download, range(DISTINCT)))
    for number, got in enumerate(downloads):
        assert _common_name(got.certificate_pem) == f"host-{number}.example.com"
        if ids[number] in csrs:
            assert public_der(got.certificate_pem) == csrs[ids[number]].public_der
    ledger = Backstage(fleet.emulator).batches()
    names = sorted(batch["batch_name"] for batch in ledger)
    assert names == sorted(reply.batch_name for reply in replies)
    assert len(set(names)) == DISTINCT
    assert {batch["batch_id"] for batch in ledger} == {r.batch_id for r in final.values()}
    twice = [batch for batch in ledger if batch["downloads"] != 1]
    takeovers = [
        e for r in fleet for e in r.logs.events() if e.get("event") == "requests taken over"
    ]
    assert not twice, f"batches not downloaded exactly once: {twice[:5]}; {takeovers}"
