"""The fleet shares one Sectigo access token: logins and refreshes follow the token's lifetime,
not the number of replicas."""

from __future__ import annotations

import itertools
import time

from tests.conftest import EmulatorFactory
from tests.reliability.lab import Backstage
from tests.replicas.conftest import FleetFactory
from tests.service.helpers import READY, server_key_request, wait_for

LIFETIME = 10  # seconds an access token of the emulator lasts
# The service renews a token once it is within its refresh margin of expiry, the margin being
# capped at half the lifetime (sectigo_svc/sectigo/tokens.py): with 10 s tokens, every 5 s.
RENEWAL_PERIOD = LIFETIME / 2
RUN = 30.0  # seconds of steady issuance


def test_three_replicas_renew_one_token_between_them(
    fleet_factory: FleetFactory, emulator_factory: EmulatorFactory
) -> None:
    emulator = emulator_factory(access_lifetime=LIFETIME)
    started, began = time.time(), time.monotonic()
    fleet = fleet_factory(3, emulator=emulator)
    numbers = itertools.count()
    issued: list[tuple[int, str]] = []
    while time.monotonic() - began < RUN:
        number = next(numbers)
        request_id = f"steady-{number}"
        fleet[number % 3].stub.IssueCertificate(
            server_key_request(request_id, f"steady-{number}.example.com"), timeout=10
        )
        issued.append((number % 3, request_id))
        time.sleep(0.5)
    for replica, request_id in issued:
        wait_for(fleet[replica].stub, request_id, [READY])
    elapsed = time.monotonic() - began
    backstage = Backstage(emulator)
    stats = backstage.stats()
    renewals = [
        (entry["route"], round(entry["arrived"] - started, 2))
        for entry in backstage.journal("login", "refresh")
        if entry["status"] == 200
    ]

    logins, refreshes = stats["logins"], stats["refreshes"]
    seen = f"{logins} logins, {refreshes} refreshes in {elapsed:.1f} s: {renewals}"
    assert len(issued) >= 10
    assert logins <= 2, f"the replicas do not share their token: {seen}"
    # Each replica on its own would renew about three times as often.
    assert logins + refreshes <= elapsed / RENEWAL_PERIOD + 2, seen
    gaps = [later[1] - earlier[1] for earlier, later in itertools.pairwise(renewals)]
    assert min(gaps) > RENEWAL_PERIOD / 2, f"a token renewed twice in a row: {seen}"
