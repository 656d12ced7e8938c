"""Who is calling, and what the role policy lets them do.

The server requires client certificates signed by the configured CA bundle, so by the time a peer
certificate reaches this module its chain has been verified by the TLS layer; nothing here verifies
chains or looks at the network. The gRPC layer passes the peer certificate in (PEM or DER bytes,
or a parsed certificate) and asks the policy for a role. Keeping grpc out of this module lets the
policy be tested, and checked by an operator tool, without a server.

Matching is exact string comparison: a policy key matches a caller when it equals the caller's
canonical name or any of its aliases (URI SANs, DNS SANs, common names). The policy does not know
which kind of name a key was meant to be, so the trust boundary is the client CA: it must only sign
names that belong to the services holding them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from cryptography import x509
from cryptography.x509.oid import NameOID


class Role(StrEnum):
    """A permission an RPC requires. ADMIN implies every other role."""

    ISSUE = "issue"
    REVOKE = "revoke"
    READ = "read"
    ADMIN = "admin"


class IdentityError(Exception):
    """The peer certificate names no caller: no URI SAN, DNS SAN or common name, or unparseable."""


class PolicyError(Exception):
    """The policy file cannot be used; the message names the file, the entry and what to fix."""


@dataclass(frozen=True)
class Identity:
    """A caller as named by its verified certificate.

    `name` is the canonical identity recorded in audit logs and used for request ownership: the
    first URI SAN (e.g. a SPIFFE ID), else the first DNS SAN, else the common name. `aliases` holds
    every URI SAN, DNS SAN and common name, in that order and without duplicates, so that an
    operator may key the policy by whichever name they know.
    """

    name: str
    aliases: tuple[str, ...]


def identity_from_certificate(cert: x509.Certificate) -> Identity:
    """Name the caller of a verified certificate; `IdentityError` when it carries no usable name."""
    try:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            uris: list[str] = []
            dns_names: list[str] = []
        else:
            uris = san.get_values_for_type(x509.UniformResourceIdentifier)
            dns_names = san.get_values_for_type(x509.DNSName)
        common_names = [
            attribute.value
            for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            if isinstance(attribute.value, str)
        ]
    except (ValueError, x509.DuplicateExtension) as exc:
        raise IdentityError(f"client certificate has malformed names: {exc}") from exc
    aliases = tuple(dict.fromkeys(name for name in (*uris, *dns_names, *common_names) if name))
    if not aliases:
        raise IdentityError(
            f"client certificate (serial {cert.serial_number:x}, subject "
            f"{cert.subject.rfc4514_string()!r}) has no URI SAN, DNS SAN or common name "
            "to identify the caller"
        )
    return Identity(name=aliases[0], aliases=aliases)


def identity_from_pem(data: bytes) -> Identity:
    """Name the caller of a PEM certificate (gRPC's `x509_pem_cert` auth property)."""
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise IdentityError(f"peer certificate is not a PEM X.509 certificate: {exc}") from exc
    return identity_from_certificate(cert)


def identity_from_der(data: bytes) -> Identity:
    """Name the caller of a DER certificate (what `ssl.SSLSocket.getpeercert(True)` returns)."""
    try:
        cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise IdentityError(f"peer certificate is not a DER X.509 certificate: {exc}") from exc
    return identity_from_certificate(cert)


class Policy:
    """An immutable map from identity names to roles, loaded once at start.

    A caller's roles are the union over every entry whose key equals its name or an alias; ADMIN
    expands to every role. A caller that matches no entry has no roles.
    """

    __slots__ = ("_grants",)

    def __init__(self, grants: Mapping[str, Iterable[Role]]) -> None:
        self._grants: Mapping[str, frozenset[Role]] = MappingProxyType(
            {key: frozenset(roles) for key, roles in grants.items()}
        )

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Read and validate a TOML policy file; every problem is a `PolicyError` naming `path`."""
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise PolicyError(
                f"{path}: cannot read the policy file: {exc.strerror or exc}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise PolicyError(f"{path}: the policy file is not UTF-8 text: {exc.reason}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: invalid TOML: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, source: str = "policy") -> Policy:
        """Validate parsed policy data; `source` names the origin in error messages."""
        unknown = sorted(repr(key) for key in data if key != "identities")
        if unknown:
            raise PolicyError(
                f"{source}: unknown top-level key {', '.join(unknown)}; "
                'the policy holds only [identities."<name>"] tables'
            )
        entries = data.get("identities", {})
        if not isinstance(entries, Mapping):
            raise PolicyError(f"{source}: 'identities' must be a table of identity entries")
        return cls(
            {_checked_key(source, key): _roles(source, key, v) for key, v in entries.items()}
        )

    @property
    def grants(self) -> Mapping[str, frozenset[Role]]:
        """The roles listed for each policy key, as written (ADMIN not expanded)."""
        return self._grants

    def roles_of(self, identity: Identity) -> frozenset[Role]:
        """Every role the caller holds, with ADMIN expanded to all roles."""
        granted: set[Role] = set()
        for key in (identity.name, *identity.aliases):
            granted |= self._grants.get(key, frozenset())
        return frozenset(Role) if Role.ADMIN in granted else frozenset(granted)

    def allows(self, identity: Identity, role: Role) -> bool:
        """Whether the caller may perform an action that requires `role`."""
        return role in self.roles_of(identity)

    def is_admin(self, identity: Identity) -> bool:
        """Whether the caller may see and act on every caller's requests."""
        return self.allows(identity, Role.ADMIN)

    def __repr__(self) -> str:
        return f"Policy({len(self._grants)} identities)"


def _checked_key(source: str, key: object) -> str:
    if not isinstance(key, str) or not key or key != key.strip():
        raise PolicyError(
            f"{source}: identity {key!r}: the key must be a non-empty name without surrounding "
            "whitespace (a URI SAN, DNS SAN or common name)"
        )
    return key


def _roles(source: str, key: str, entry: object) -> frozenset[Role]:
    where = f"{source}: identity {key!r}"
    if not isinstance(entry, Mapping):
        raise PolicyError(f'{where}: must be a table such as roles = ["read"]')
    extra = sorted(repr(name) for name in entry if name != "roles")
    if extra:
        raise PolicyError(f"{where}: unknown key {', '.join(extra)}; only 'roles' is allowed")
    if "roles" not in entry:
        raise PolicyError(f"{where}: missing 'roles' (a list such as roles = [\"read\"])")
    names = entry["roles"]
    if not isinstance(names, list | tuple):
        raise PolicyError(
            f"{where}: 'roles' must be a list of role names, not {type(names).__name__} {names!r}"
        )
    roles: set[Role] = set()
    for name in names:
        try:
            roles.add(Role(name))
        except ValueError:
            known = ", ".join(sorted(Role))
            raise PolicyError(f"{where}: unknown role {name!r}; known roles: {known}") from None
    return frozenset(roles)
