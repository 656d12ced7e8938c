"""What every deployment file must give the service, shared by the static checks."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from sectigo_svc.config import ENV_PREFIX, ServiceConfig

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
SETTINGS = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(ServiceConfig)}
# What the service cannot start without, beyond defaults (mutual TLS, policy, Sectigo password).
REQUIRED = {
    "SECTIGO_SVC_TLS_CERT",
    "SECTIGO_SVC_TLS_KEY",
    "SECTIGO_SVC_TLS_CLIENT_CA",
    "SECTIGO_SVC_POLICY_FILE",
    "SECTIGO_SVC_SECTIGO_PASSWORD_FILE",
}
# What several replicas on PostgreSQL need on top of REQUIRED.
REPLICA_REQUIRED = {
    "SECTIGO_SVC_DATABASE_URL",
    "SECTIGO_SVC_DATABASE_PASSWORD_FILE",
    "SECTIGO_SVC_DATA_KEY_FILE",
}
SECRET_VALUE = re.compile(r"(?i)(password|secret|token|key)=(?!/)\S+")


def url_parts(url: str) -> dict[str, str]:
    """The libpq parts of a database URL (user, host, port, dbname, password if any)."""
    return {k: str(v) for k, v in conninfo_to_dict(url).items()}
