"""The CertificateAuthority API, major version 1 (proto package ``sectigo.ca.v1``).

``ca_pb2`` (messages) and ``ca_pb2_grpc`` (stub and servicer), with their ``.pyi`` stubs, are
generated from protos/sectigo/ca/v1/ca.proto by ``make protos``; never edit them. This file is
written by hand: it states the version of the API the generated code is, which clients send in
the :data:`VERSION_HEADER` request metadata and the service compares with its own.

Within v1 every change is additive (new fields, messages, RPCs or enum values; numbers never
reused or renumbered); each such change raises :data:`MINOR`. An incompatible change is a new
package, ``sectigo.ca.v2``, served beside this one.
"""

MAJOR = 1
MINOR = 1
VERSION = f"{MAJOR}.{MINOR}"
# Request metadata (gRPC header) key carrying the caller's API version, "<major>.<minor>".
VERSION_HEADER = "sectigo-ca-api-version"
