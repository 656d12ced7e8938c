"""Bad inputs on every RPC: INVALID_ARGUMENT naming the field, in the trailer and the message."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import cast

from sectigo.ca.v1 import ca_pb2 as pb
from tests.service.conftest import Service
from tests.service.helpers import (
    Failure,
    Stub,
    csr_request,
    failure,
    make_csr,
    server_key_request,
)

TIMEOUT = 10.0
Call = Callable[[Stub], object]
UNKNOWN_STATE = cast(pb.RequestState.ValueType, 42)  # proto3 enums are open: any number arrives
UNUSED_REASON = cast(pb.RevocationReason.ValueType, 7)  # RFC 5280 has no reason 7


def _issue(request: pb.IssueCertificateRequest) -> Call:
    return lambda s: s.IssueCertificate(request, timeout=TIMEOUT)


def _list(request: pb.ListCertificateRequestsRequest) -> Call:
    return lambda s: s.ListCertificateRequests(request, timeout=TIMEOUT)


def _find(request: pb.FindCertificatesRequest) -> Call:
    return lambda s: s.FindCertificates(request, timeout=TIMEOUT)


def _revoke(request: pb.RevokeCertificateRequest) -> Call:
    return lambda s: s.RevokeCertificate(request, timeout=TIMEOUT)


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _bad_signature_csr() -> str:
    """A well-formed CSR whose signature does not verify: its subject changed after signing."""
    pem = make_csr("sig.example.com", ["sig.example.com"]).pem
    der = base64.b64decode("".join(pem.splitlines()[1:-1]))
    tampered = der.replace(b"sig.example.com", b"sih.example.com", 1)
    assert tampered != der
    encoded = base64.encodebytes(tampered).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{encoded}-----END CERTIFICATE REQUEST-----\n"


SAN_CSR = make_csr("ok.example.com", ["ok.example.com"]).pem
NO_SAN_CSR = make_csr("nosan.example.com", None).pem
BAD_SAN_CSR = make_csr("ok.example.com", ["bad_name.example.com"]).pem
BAD_BODY = pb.Subject(organization="Example\nLtd")

# (what is wrong, the call, the field that must be named)
CASES: list[tuple[str, Call, str]] = [
    (
        "request_id with a space",
        _issue(server_key_request("bad id", "a.example.com")),
        "request_id",
    ),
    ("empty request_id", _issue(server_key_request("", "a.example.com")), "request_id"),
    ("request_id too long", _issue(server_key_request("x" * 129, "a.example.com")), "request_id"),
    ("no key at all", _issue(pb.IssueCertificateRequest(request_id="v-1")), "key"),
    ("empty csr_pem", _issue(csr_request("v-1", "")), "key"),
    (
        "empty server_key",
        _issue(pb.IssueCertificateRequest(request_id="v-1", server_key=pb.ServerKeySpec())),
        "server_key.common_name",
    ),
    ("CSR not PEM", _issue(csr_request("v-1", "not a csr")), "csr_pem"),
    ("CSR bad signature", _issue(csr_request("v-1", _bad_signature_csr())), "csr_pem"),
    ("CSR without SAN", _issue(csr_request("v-1", NO_SAN_CSR)), "csr_pem"),
    ("CSR bad SAN", _issue(csr_request("v-1", BAD_SAN_CSR)), "csr_pem.subjectAltName"),
    (
        "bad common name",
        _issue(server_key_request("v-1", "-bad-.example.com")),
        "server_key.common_name",
    ),
    (
        "bad second dns name",
        _issue(server_key_request("v-1", "a.example.com", ["b.example.com", "not a name"])),
        "server_key.dns_names[1]",
    ),
    (
        "short pkcs12 password",
        _issue(server_key_request("v-1", "a.example.com", password="short")),
        "server_key.pkcs12_password",
    ),
    (
        "bad country",
        _issue(server_key_request("v-1", "a.example.com", subject=pb.Subject(country="usa"))),
        "server_key.subject.country",
    ),
    (
        "organization over two lines",
        _issue(server_key_request("v-1", "a.example.com", subject=BAD_BODY)),
        "server_key.subject.organization",
    ),
    (
        "negative authority",
        _issue(server_key_request("v-1", "a.example.com", authority_id=-1)),
        "authority_id",
    ),
    (
        "unknown authority",
        _issue(server_key_request("v-1", "a.example.com", authority_id=99)),
        "authority_id",
    ),
    (
        "profile needs subject fields",
        _issue(server_key_request("v-1", "a.example.com", authority_id=85)),
        "server_key.subject.organization",
    ),
    (
        "get: bad request_id",
        lambda s: s.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="a/b"), timeout=TIMEOUT
        ),
        "request_id",
    ),
    (
        "list: page_size too big",
        _list(pb.ListCertificateRequestsRequest(page_size=501)),
        "page_size",
    ),
    (
        "list: negative page_size",
        _list(pb.ListCertificateRequestsRequest(page_size=-1)),
        "page_size",
    ),
    (
        "list: bad page_token",
        _list(pb.ListCertificateRequestsRequest(page_token="garbage")),
        "page_token",
    ),
    (
        "list: unknown state",
        _list(pb.ListCertificateRequestsRequest(states=[UNKNOWN_STATE])),
        "states",
    ),
    (
        "watch: bad request_id",
        lambda s: list(
            s.WatchCertificateRequest(
                pb.WatchCertificateRequestRequest(request_id="a b"), timeout=TIMEOUT
            )
        ),
        "request_id",
    ),
    (
        "download: bad request_id",
        lambda s: s.DownloadCertificate(
            pb.DownloadCertificateRequest(request_id=""), timeout=TIMEOUT
        ),
        "request_id",
    ),
    ("find: no criterion", _find(pb.FindCertificatesRequest()), "criterion"),
    ("find: bad serial", _find(pb.FindCertificatesRequest(serial_number="XYZ")), "serial_number"),
    (
        "find: bad common name",
        _find(pb.FindCertificatesRequest(common_name="not a name")),
        "common_name",
    ),
    ("revoke: no target", _revoke(pb.RevokeCertificateRequest()), "target"),
    (
        "revoke: bad serial",
        _revoke(pb.RevokeCertificateRequest(serial_number="not hex")),
        "serial_number",
    ),
    (
        "revoke: reason 7",
        _revoke(pb.RevokeCertificateRequest(request_id="v-1", reason=UNUSED_REASON)),
        "reason",
    ),
    (
        "revoke: bad request_id",
        _revoke(pb.RevokeCertificateRequest(request_id="a b")),
        "request_id",
    ),
    (
        "get: owner over two lines",
        lambda s: s.GetCertificateRequest(
            pb.GetCertificateRequestRequest(request_id="v-1", owner="spiffe://x\n"),
            timeout=TIMEOUT,
        ),
        "owner",
    ),
    (
        "list: common name not a DNS name",
        _list(pb.ListCertificateRequestsRequest(common_name="a b")),
        "common_name",
    ),
    (
        "list: page_token past SQLite's integers",
        _list(pb.ListCertificateRequestsRequest(page_token=_token(f"v1:{2**64}"))),
        "page_token",
    ),
    (
        "find: serial with a newline inside",
        _find(pb.FindCertificatesRequest(serial_number="1A\n2B")),
        "serial_number",
    ),
    (
        "revoke: serial with a negative profile_id",
        _revoke(pb.RevokeCertificateRequest(serial_number="1A2B", profile_id=-1)),
        "profile_id",
    ),
    (
        "get profile past 2^53",
        lambda s: s.GetProfile(pb.GetProfileRequest(profile_id=2**53), timeout=TIMEOUT),
        "profile_id",
    ),
    (
        "get profile 0",
        lambda s: s.GetProfile(pb.GetProfileRequest(profile_id=0), timeout=TIMEOUT),
        "profile_id",
    ),
    (
        "get profile -1",
        lambda s: s.GetProfile(pb.GetProfileRequest(profile_id=-1), timeout=TIMEOUT),
        "profile_id",
    ),
]


def _verdict(result: Failure, field: str) -> tuple[str, str | None, bool]:
    return result.code.name, result.field, result.details.startswith(f"{field}: ")


def test_every_bad_input_is_invalid_argument_naming_the_field(service: Service) -> None:
    # admin may call every RPC, so nothing but the input can be refused.
    stub = service.stub("admin")

    verdicts = {
        what: _verdict(failure(functools.partial(call, stub)), field) for what, call, field in CASES
    }

    expected = {what: ("INVALID_ARGUMENT", field, True) for what, _, field in CASES}
    assert verdicts == expected
    assert service.sectigo.requests_to("create_batch") == 0
    assert service.app.store.audit_log() == []


def test_the_bases_of_the_bad_cases_are_accepted(service: Service) -> None:
    """Each bad case differs from an accepted request in one field, so it fails for one reason."""
    stub = service.stub()
    subject = pb.Subject(
        organization="Example Ltd", locality="Menlo Park", state="CA", country="US"
    )

    accepted = [
        stub.IssueCertificate(csr_request("v-csr", SAN_CSR), timeout=TIMEOUT),
        stub.IssueCertificate(
            server_key_request("v-srv", "a.example.com", ["b.example.com"], "long enough"),
            timeout=TIMEOUT,
        ),
        stub.IssueCertificate(
            server_key_request("v-ee", "a.example.com", subject=subject, authority_id=85),
            timeout=TIMEOUT,
        ),
    ]

    assert [r.state for r in accepted] == [pb.REQUEST_STATE_PENDING] * 3
