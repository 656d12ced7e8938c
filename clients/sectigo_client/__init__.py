"""The Python client of the sectigo-svc CertificateAuthority service, and the ``sectigo-ca`` command."""
