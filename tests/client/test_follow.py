"""``sectigo-ca watch`` as a real process follows a request across a restart of the service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sectigo_client import CertificateAuthorityClient, RequestState
from tests.client.conftest import environment, settings
from tests.service.conftest import ServiceFactory
from tests.service.helpers import WAIT, poll

SECTIGO_CA = Path(sys.executable).with_name("sectigo-ca")


def test_watch_rides_out_a_restart_of_the_service(service_factory: ServiceFactory) -> None:
    first = service_factory()
    first.sectigo.settings(stuck=True)
    port = first.app.port
    with CertificateAuthorityClient.connect(settings(first.target, first.pki)) as ca:
        record = ca.issue(common_name="follow.example.com")
        poll(
            lambda: True if ca.get(record.request_id).state is RequestState.PROCESSING else None,
            "the request to be stuck in PROCESSING",
        )
    env = {**os.environ, **environment(first.target, first.pki), "PYTHONUNBUFFERED": "1"}
    watching = subprocess.Popen(
        [SECTIGO_CA, "watch", record.request_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert watching.stdout is not None
        first_line = watching.stdout.readline()
        first.stop(grace=0.2)
        time.sleep(1.0)  # the service stays down a while
        still_following = watching.poll() is None
        second = service_factory(
            emulator=first.emulator, state=first.config.state_dir, listen=f"127.0.0.1:{port}"
        )
        second.sectigo.settings(stuck=False)
        rest, errors = watching.communicate(timeout=WAIT)
    finally:
        if watching.poll() is None:
            watching.kill()
            watching.wait()

    assert first_line.split()[:2] == [record.request_id, "PROCESSING"]
    assert still_following, "watch must ride out the outage"
    assert watching.returncode == 0, errors
    assert rest.splitlines()[-1].split()[:2] == [record.request_id, "READY"]
