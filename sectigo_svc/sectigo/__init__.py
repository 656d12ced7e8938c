"""Client of the Sectigo IoT Manager API: typed methods, typed errors, shared credentials.

Build one :class:`SectigoClient` per process with :meth:`SectigoClient.build` and share it between
threads. It knows nothing of gRPC or of the request store.
"""

from sectigo_svc.sectigo.archive import CertificateChain, KeyAndChain, open_pem_zip, open_pkcs12_zip
from sectigo_svc.sectigo.batch_status import BatchStatus, StatusText
from sectigo_svc.sectigo.client import SectigoClient
from sectigo_svc.sectigo.config import Environment, SectigoConfig
from sectigo_svc.sectigo.credential_store import CredentialStore, TokenStatus
from sectigo_svc.sectigo.credentials import Credentials, Secret
from sectigo_svc.sectigo.deadline import Deadline
from sectigo_svc.sectigo.reasons import RevocationReason, parse_reason
from sectigo_svc.sectigo.tokens import TokenState

__all__ = [
    "BatchStatus",
    "CertificateChain",
    "CredentialStore",
    "Credentials",
    "Deadline",
    "Environment",
    "KeyAndChain",
    "RevocationReason",
    "Secret",
    "SectigoClient",
    "SectigoConfig",
    "StatusText",
    "TokenState",
    "TokenStatus",
    "open_pem_zip",
    "open_pkcs12_zip",
    "parse_reason",
]
