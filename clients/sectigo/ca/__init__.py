"""The CertificateAuthority API of sectigo-svc; ``v1`` is the current major version."""
