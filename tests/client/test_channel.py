"""The channel's retry policy and options, as gRPC will read them."""

from __future__ import annotations

import json

from sectigo.ca.v1 import ca_pb2
from sectigo_client.channel import RETRIED_METHODS, SERVICE, channel_options


def test_every_rpc_has_a_retry_decision_and_unavailable_is_retried() -> None:
    options = dict(channel_options())
    config = json.loads(str(options["grpc.service_config"]))

    (method_config,) = config["methodConfig"]
    names = [(n["service"], n["method"]) for n in method_config["name"]]
    rpcs = [m.name for m in ca_pb2.DESCRIPTOR.services_by_name["CertificateAuthority"].methods]
    assert sorted(names) == sorted((SERVICE, rpc) for rpc in rpcs)
    assert sorted(RETRIED_METHODS) == sorted(rpcs), "a new RPC needs a decision here"
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert options["grpc.enable_retries"] == 1
    assert int(options["grpc.keepalive_time_ms"]) >= 300_000, "the default server's ping floor"
