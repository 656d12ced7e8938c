"""Opening batch ZIPs: the leaf matching the key, the chain in order, clear errors otherwise."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from sectigo_svc.sectigo.archive import open_pem_zip, open_pkcs12_zip
from sectigo_svc.sectigo.credentials import Secret
from sectigo_svc.sectigo.errors import ArchiveError, WrongPassword
from tests.sectigo.fakes import self_signed_chain

PASSWORD = "p12-secret"


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def p12_with_the_leaf_last() -> tuple[bytes, object]:
    """A PKCS#12 whose certificate bags put the CA first: "first bag is the leaf" would be wrong."""
    key, leaf, (issuing, root) = self_signed_chain()
    data = pkcs12.serialize_key_and_certificates(
        b"leaf",
        key,
        None,
        [root, issuing, leaf],
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    return data, leaf


def test_opens_the_p12_and_picks_the_leaf_matching_the_key(tmp_path: Path) -> None:
    data, leaf = p12_with_the_leaf_last()
    path = tmp_path / "10000.zip"
    path.write_bytes(zip_of({"leaf.example.com.p12": data}))
    opened = open_pkcs12_zip(path, Secret(PASSWORD))
    assert opened.leaf == leaf
    assert [c.subject.rfc4514_string() for c in opened.chain] == ["CN=Test Issuing", "CN=Test Root"]
    assert opened.name == "leaf.example.com.p12"
    assert "PRIVATE" not in repr(opened)


def test_wrong_password_is_its_own_error() -> None:
    data, _ = p12_with_the_leaf_last()
    with pytest.raises(WrongPassword, match="wrong password or corrupt PKCS#12"):
        open_pkcs12_zip(zip_of({"x.p12": data}), "not-it")


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"<html>502 Bad Gateway</html>", "not a ZIP archive"),
        (zip_of({"readme.txt": b"hi"}), "found no"),
        (zip_of({"a.p12": b"1", "b.pfx": b"2"}), "found 2"),
    ],
)
def test_unexpected_archives_are_explained(archive: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        open_pkcs12_zip(archive, PASSWORD)


def test_a_p12_without_the_matching_certificate_is_refused() -> None:
    key, _, (issuing, root) = self_signed_chain()
    data = pkcs12.serialize_key_and_certificates(
        b"x", key, None, [issuing, root], serialization.BestAvailableEncryption(b"pw")
    )
    with pytest.raises(ArchiveError, match="no certificate matches the private key"):
        open_pkcs12_zip(zip_of({"x.p12": data}), "pw")


def test_pem_zip_of_a_csr_batch_gives_one_chain_per_entry() -> None:
    pem = serialization.Encoding.PEM
    chains = {}
    for name in ("a.example.com", "b.example.com"):
        _, leaf, (issuing, root) = self_signed_chain(name)
        chains[f"{name}.pem"] = b"".join(c.public_bytes(pem) for c in (root, leaf, issuing))
    opened = open_pem_zip(zip_of(chains))
    assert [c.name for c in opened] == ["a.example.com.pem", "b.example.com.pem"]
    assert opened[0].leaf.subject.rfc4514_string() == "CN=a.example.com"
    assert [c.subject.rfc4514_string() for c in opened[0].chain] == [
        "CN=Test Issuing",
        "CN=Test Root",
    ]


def test_pem_zip_errors() -> None:
    with pytest.raises(ArchiveError, match="found none"):
        open_pem_zip(zip_of({"x.p12": b""}))
    with pytest.raises(ArchiveError, match="not PEM certificates"):
        open_pem_zip(zip_of({"x.pem": b"garbage"}))
