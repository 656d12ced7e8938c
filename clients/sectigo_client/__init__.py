"""The Python client of the sectigo-svc CertificateAuthority service (and ``sectigo-ca``).

    from sectigo_client import CertificateAuthorityClient

    with CertificateAuthorityClient.from_env() as ca:
        issued = ca.issue_with_new_key("api.example.com", ["www.example.com"])
        ca.wait(issued.request_id, timeout=300)
        ca.download_to(issued.request_id, "tls", private_key=issued.private_key_pem)

``API_VERSION`` is the version of the service's API this client speaks ("1.<minor>"); it is sent
with every call. See docs/client.md.
"""

from sectigo_client.channel import ConnectionSettings
from sectigo_client.client import ALL_OWNERS, CertificateAuthorityClient, IssuedKey, new_request_id
from sectigo_client.errors import (
    AlreadyExists,
    CertificateAuthorityError,
    ConfigurationError,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    WaitTimeout,
)
from sectigo_client.keys import KeyType, NewKey, new_key
from sectigo_client.models import (
    Authority,
    Certificate,
    CertificateRecord,
    FoundCertificate,
    KeySource,
    Licenses,
    Profile,
    ProfileParameter,
    ProfileSummary,
    RequestState,
    Revocation,
    RevocationReason,
    SavedFiles,
    Subject,
)
from sectigo_client.transport import API_VERSION, DEFAULT_TIMEOUT, Transport

__all__ = [
    "ALL_OWNERS",
    "API_VERSION",
    "DEFAULT_TIMEOUT",
    "AlreadyExists",
    "Authority",
    "Certificate",
    "CertificateAuthorityClient",
    "CertificateAuthorityError",
    "CertificateRecord",
    "ConfigurationError",
    "ConnectionSettings",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FoundCertificate",
    "Internal",
    "InvalidArgument",
    "IssuedKey",
    "KeySource",
    "KeyType",
    "Licenses",
    "NewKey",
    "NotFound",
    "PermissionDenied",
    "Profile",
    "ProfileParameter",
    "ProfileSummary",
    "RequestState",
    "ResourceExhausted",
    "Revocation",
    "RevocationReason",
    "SavedFiles",
    "Subject",
    "Transport",
    "Unauthenticated",
    "Unavailable",
    "WaitTimeout",
    "new_key",
    "new_request_id",
]
