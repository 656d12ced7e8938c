"""Caller identity from certificates, and the role policy: matching, ADMIN, unions, validation."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sectigo_svc.authz import (
    Identity,
    IdentityError,
    Policy,
    PolicyError,
    Role,
    identity_from_certificate,
    identity_from_der,
    identity_from_pem,
)

URI = "spiffe://sectigo-svc.test/registration"
DNS = "registration.clients.sectigo-svc.test"
CN = "registration"


def make_cert(
    *,
    cn: str | None = None,
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> x509.Certificate:
    """A self-signed certificate carrying exactly the given names."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def identity(name: str, *aliases: str) -> Identity:
    return Identity(name=name, aliases=(name, *aliases))


# --- identity ---------------------------------------------------------------------------------


def test_identity_prefers_uri_san_then_dns_san_then_common_name() -> None:
    full = identity_from_certificate(make_cert(cn=CN, dns=[DNS], uris=[URI]))
    assert full.name == URI
    assert full.aliases == (URI, DNS, CN)

    no_uri = identity_from_certificate(make_cert(cn=CN, dns=[DNS, "other.test"]))
    assert no_uri.name == DNS
    assert no_uri.aliases == (DNS, "other.test", CN)

    cn_only = identity_from_certificate(make_cert(cn=CN))
    assert cn_only == Identity(name=CN, aliases=(CN,))


def test_identity_aliases_list_every_name_once_in_order() -> None:
    cert = make_cert(cn=DNS, dns=[DNS, "b.test"], uris=[URI, "spiffe://sectigo-svc.test/second"])
    assert identity_from_certificate(cert).aliases == (
        URI,
        "spiffe://sectigo-svc.test/second",
        DNS,
        "b.test",
    )


def test_certificate_without_any_name_is_an_identity_error() -> None:
    with pytest.raises(IdentityError, match="no URI SAN, DNS SAN or common name"):
        identity_from_certificate(make_cert())
    with pytest.raises(IdentityError, match="no URI SAN, DNS SAN or common name"):
        identity_from_certificate(make_cert(ips=["127.0.0.1"]))


def test_identity_from_pem_and_der_bytes() -> None:
    cert = make_cert(cn=CN, uris=[URI])
    pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert identity_from_pem(pem).name == URI
    assert identity_from_der(der).name == URI
    with pytest.raises(IdentityError, match="not a PEM"):
        identity_from_pem(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(IdentityError, match="not a DER"):
        identity_from_der(pem)


# --- policy matching ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [URI, DNS, CN])
def test_policy_entry_matches_by_any_name_of_the_certificate(key: str) -> None:
    policy = Policy.from_mapping({"identities": {key: {"roles": ["read"]}}})
    caller = identity_from_certificate(make_cert(cn=CN, dns=[DNS], uris=[URI]))
    assert policy.roles_of(caller) == {Role.READ}
    assert policy.allows(caller, Role.READ)
    assert not policy.allows(caller, Role.ISSUE)
    assert not policy.is_admin(caller)


def test_unlisted_caller_has_no_roles() -> None:
    policy = Policy.from_mapping({"identities": {URI: {"roles": ["admin"]}}})
    stranger = identity("spiffe://sectigo-svc.test/stranger", "stranger")
    assert policy.roles_of(stranger) == frozenset()
    assert not any(policy.allows(stranger, role) for role in Role)
    assert not policy.is_admin(stranger)


def test_admin_implies_every_role() -> None:
    policy = Policy.from_mapping({"identities": {"admin": {"roles": ["admin"]}}})
    admin = identity("admin")
    assert policy.roles_of(admin) == frozenset(Role)
    assert all(policy.allows(admin, role) for role in Role)
    assert policy.is_admin(admin)
    assert policy.grants["admin"] == {Role.ADMIN}


def test_roles_from_two_matching_entries_are_united() -> None:
    policy = Policy.from_mapping(
        {
            "identities": {
                URI: {"roles": ["issue"]},
                DNS: {"roles": ["read", "revoke"]},
                "somebody-else": {"roles": ["admin"]},
            }
        }
    )
    caller = identity_from_certificate(make_cert(dns=[DNS], uris=[URI]))
    assert policy.roles_of(caller) == {Role.ISSUE, Role.READ, Role.REVOKE}
    assert not policy.is_admin(caller)


def test_empty_roles_list_grants_nothing_and_empty_policy_denies_all() -> None:
    caller = identity(URI)
    assert Policy.from_mapping({"identities": {URI: {"roles": []}}}).roles_of(caller) == set()
    assert Policy.from_mapping({}).roles_of(caller) == set()


def test_policy_is_immutable_after_loading() -> None:
    grants: dict[str, list[Role]] = {URI: [Role.READ]}
    policy = Policy(grants)
    grants[URI].append(Role.ADMIN)
    assert policy.roles_of(identity(URI)) == {Role.READ}
    with pytest.raises(TypeError):
        policy.grants[URI] = frozenset({Role.ADMIN})  # type: ignore[index]


# --- loading and validation ---------------------------------------------------------------------


def test_load_reads_the_documented_format(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        "# sectigo-svc authorization policy\n"
        '[identities."spiffe://sectigo-svc.test/registration"]\n'
        'roles = ["issue", "read", "revoke"]\n'
        '[identities."admin.clients.sectigo-svc.test"]\n'
        'roles = ["admin"]\n'
    )
    policy = Policy.load(path)
    assert policy.roles_of(identity(URI)) == {Role.ISSUE, Role.READ, Role.REVOKE}
    assert policy.is_admin(identity("spiffe://x/admin", "admin.clients.sectigo-svc.test"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '[identities."spiffe://a"]\nroles = ["read", "superuser"]\n',
            ["identity 'spiffe://a'", "unknown role 'superuser'", "known roles: admin, issue"],
            id="unknown-role",
        ),
        pytest.param(
            '[identities."spiffe://a"]\nroles = [read]\n',
            ["invalid TOML", "line 2"],
            id="bad-toml",
        ),
        pytest.param(
            '[identities."spiffe://a"]\n',
            ["identity 'spiffe://a'", "missing 'roles'"],
            id="missing-roles",
        ),
        pytest.param(
            '[identities."spiffe://a"]\nroles = "read"\n',
            ["identity 'spiffe://a'", "'roles' must be a list", "str 'read'"],
            id="roles-not-a-list",
        ),
        pytest.param(
            '[identities."spiffe://a"]\nroles = ["read", 3]\n',
            ["identity 'spiffe://a'", "unknown role 3"],
            id="role-not-a-string",
        ),
        pytest.param(
            '[identity."spiffe://a"]\nroles = ["read"]\n',
            ["unknown top-level key 'identity'"],
            id="unknown-top-level-key",
        ),
        pytest.param(
            '[identities."spiffe://a"]\nrole = ["read"]\n',
            ["identity 'spiffe://a'", "unknown key 'role'", "only 'roles'"],
            id="unknown-entry-key",
        ),
        pytest.param(
            'identities = ["spiffe://a"]\n',
            ["'identities' must be a table"],
            id="identities-not-a-table",
        ),
        pytest.param(
            'identities."spiffe://a" = "read"\n',
            ["identity 'spiffe://a'", "must be a table"],
            id="entry-not-a-table",
        ),
        pytest.param(
            '[identities." spiffe://a"]\nroles = ["read"]\n',
            ["identity ' spiffe://a'", "without surrounding whitespace"],
            id="padded-key",
        ),
    ],
)
def test_policy_errors_name_the_file_the_entry_and_the_problem(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        Policy.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message


def test_missing_or_non_utf8_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        Policy.load(missing)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'[identities."\xff"]\nroles = []\n')
    with pytest.raises(PolicyError, match="not UTF-8"):
        Policy.load(binary)


def test_from_mapping_names_its_source() -> None:
    with pytest.raises(PolicyError, match=r"^config\[authz\]: identity 'a': unknown role 'x'"):
        Policy.from_mapping({"identities": {"a": {"roles": ["x"]}}}, source="config[authz]")
