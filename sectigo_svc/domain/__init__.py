"""The certificate service's domain: requests, their lifecycle, and the rules around them.

Nothing here knows gRPC or protobuf; the gRPC layer translates to and from these types.
"""
