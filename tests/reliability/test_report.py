"""docs/reliability.md is written from recorded figures: every run appears, and totals add up."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

import pytest

from tests.reliability.lab import Figures, Scale
from tests.reliability.report import render


def _run(key_mode: str, duplicates: int, topology: str = "sqlite x1") -> dict[str, object]:
    figures = Figures(
        scenario="slow orders",
        topology=topology,
        key_mode=key_mode,
        injected="every order answered late",
        operations=3,
        batches=3 + duplicates,
        distinct=3,
        lost=0,
        stuck=0,
        failed=0,
        internal=0,
        recovery_seconds=1.25,
        notes={"token_renewals": 2},
    )
    return figures.to_json() | {"scale": asdict(Scale())}


def test_every_run_is_a_row_and_the_totals_add_up_per_topology() -> None:
    runs = [
        _run("csr", 0),
        _run("server-key", 2),
        _run("server-key", 1, topology="postgres x3"),
    ]
    page = render(runs, dt.date(2026, 12, 1))

    assert page.startswith("# Reliability figures")
    assert "on 2026-12-01" in page and "`concurrent` = 24" in page
    assert "| sqlite x1 | csr | 3 | 3 | 0 | 0 | 0 | 0 | 0 | 1.25 | token_renewals: 2 |" in page
    assert "| sqlite x1 | server-key | 3 | 5 | 2 |" in page
    assert "| postgres x3 | server-key | 3 | 4 | 1 |" in page
    # One table for the scenario and fault: its rows come ordered by topology, then key mode.
    assert page.count("Injected: every order answered late.") == 1
    assert page.index("| postgres x3 | server-key") < page.index("| sqlite x1 | csr")
    assert "- sqlite x1: 2 scenario runs: 2 duplicates, 0 lost" in page
    assert "- postgres x3: 1 scenario runs: 1 duplicates, 0 lost" in page


def test_no_results_is_an_error_not_an_empty_page() -> None:
    with pytest.raises(ValueError, match="no results"):
        render([], dt.date(2026, 12, 1))
