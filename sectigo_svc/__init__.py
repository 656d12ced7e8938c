"""sectigo-svc: a gRPC certificate authority service in front of the Sectigo IoT Manager API."""

__version__ = "0.1.0"
