"""The CertificateAuthority servicer: protobuf in, domain call, protobuf out. Nothing else.

Identity, roles, deadlines, logging and error statuses are the interceptor's work; each method here
reads the caller and deadline it established.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from sectigo.ca.v1 import ca_pb2 as pb
from sectigo.ca.v1 import ca_pb2_grpc
from sectigo_svc.domain import validation
from sectigo_svc.domain.account import AccountReads
from sectigo_svc.domain.service import CertificateService
from sectigo_svc.rpc import calls, convert

# The most a list reply (ListCertificateRequests, FindCertificates) holds, in serialized bytes.
# Every gRPC client refuses a message over its receive limit, 4 MiB by default (grpcio, grpc-go,
# grpc-java, grpcurl), so a page is cut here, with a next_page_token, whatever page_size asks.
# A quarter of that limit leaves room for the reply's own fields and for clients or proxies set
# below the default, while a page of ordinary requests (under 1 KB each) is never cut: 500 of
# them are about half this. One request is at most ~30 KB (input validation bounds its names,
# convert bounds Sectigo's texts), so a page always holds at least one.
MAX_PAGE_BYTES = 1024 * 1024


class CertificateAuthorityServicer(ca_pb2_grpc.CertificateAuthorityServicer):
    def __init__(
        self,
        service: CertificateService,
        account: AccountReads,
    ) -> None:
        self._service = service
        self._account = account

    def IssueCertificate(
        self, request: pb.IssueCertificateRequest, context: grpc.ServicerContext
    ) -> pb.CertificateRequest:
        issued = self._service.issue(calls.caller(), convert.issue_input(request), calls.deadline())
        return convert.request_message(issued.request, issued.pkcs12_password)

    def GetCertificateRequest(
        self, request: pb.GetCertificateRequestRequest, context: grpc.ServicerContext
    ) -> pb.CertificateRequest:
        found = self._service.get(calls.caller(), request.owner, request.request_id)
        return convert.request_message(found)

    def ListCertificateRequests(
        self, request: pb.ListCertificateRequestsRequest, context: grpc.ServicerContext
    ) -> pb.ListCertificateRequestsResponse:
        page = self._service.list(
            calls.caller(),
            request.owner,
            convert.states(request.states),
            request.common_name,
            request.page_size,
            request.page_token,
            measure=convert.request_size,
            budget=MAX_PAGE_BYTES,
        )
        return pb.ListCertificateRequestsResponse(
            requests=[convert.request_message(r) for r in page.requests],
            next_page_token=page.next_page_token,
        )

    def WatchCertificateRequest(
        self, request: pb.WatchCertificateRequestRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.CertificateRequest]:
        for version in self._service.watch(
            calls.caller(), request.owner, request.request_id, context.is_active
        ):
            yield convert.request_message(version)

    def DownloadCertificate(
        self, request: pb.DownloadCertificateRequest, context: grpc.ServicerContext
    ) -> pb.DownloadCertificateResponse:
        download = self._service.download(
            calls.caller(),
            request.owner,
            request.request_id,
            request.include_private_key,
            include_sectigo_pkcs12=request.include_sectigo_pkcs12,
        )
        return convert.download_message(download)

    def FindCertificates(
        self, request: pb.FindCertificatesRequest, context: grpc.ServicerContext
    ) -> pb.FindCertificatesResponse:
        page = self._account.find(
            calls.caller(),
            request.common_name,
            request.serial_number,
            calls.deadline(),
            page_size=request.page_size,
            page_token=request.page_token,
            measure=convert.found_size,
            budget=MAX_PAGE_BYTES,
        )
        return convert.find_message(page.certificates, page.next_page_token)

    def RevokeCertificate(
        self, request: pb.RevokeCertificateRequest, context: grpc.ServicerContext
    ) -> pb.RevokeCertificateResponse:
        serial, revoked = self._service.revoke(
            calls.caller(),
            request_id=request.request_id,
            serial_number=request.serial_number,
            owner=request.owner,
            profile_id=request.profile_id,
            reason=convert.reason(request.reason),
            deadline=calls.deadline(),
        )
        return pb.RevokeCertificateResponse(
            serial_number=serial,
            request=convert.request_message(revoked) if revoked else None,
        )

    def ListAuthorities(
        self, request: pb.ListAuthoritiesRequest, context: grpc.ServicerContext
    ) -> pb.ListAuthoritiesResponse:
        return convert.authorities_message(self._account.authorities(calls.deadline()))

    def GetLicenses(
        self, request: pb.GetLicensesRequest, context: grpc.ServicerContext
    ) -> pb.Licenses:
        return convert.licences_message(self._account.licences(calls.deadline()))

    def ListProfiles(
        self, request: pb.ListProfilesRequest, context: grpc.ServicerContext
    ) -> pb.ListProfilesResponse:
        return convert.profiles_message(self._account.profiles(calls.deadline()))

    def GetProfile(
        self, request: pb.GetProfileRequest, context: grpc.ServicerContext
    ) -> pb.Profile:
        profile_id = validation.identifier(request.profile_id, "profile_id")
        return convert.profile_message(self._account.profile(profile_id, calls.deadline()))
