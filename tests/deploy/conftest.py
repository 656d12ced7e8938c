"""The service fixtures, shared with tests/service."""

from tests.service.conftest import pki, service_factory

__all__ = ["pki", "service_factory"]
