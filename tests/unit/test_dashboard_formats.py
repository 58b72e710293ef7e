"""How the dashboard prints times and values."""

from __future__ import annotations

import time

from vy_nexus.interfaces.dashboard.formats import DASH, clock, moment


def test_an_iso_time_prints_like_every_other_time_on_the_page() -> None:
    assert moment("2026-12-03T10:00:00+00:00") == clock(1796292000.0)
    naive = "2026-12-03T10:00:00"  # no offset: local time, as Python reads it
    assert moment(naive) == time.strftime("%Y-%m-%d %H:%M:%S", time.strptime(naive, "%Y-%m-%dT%H:%M:%S"))
    assert moment(None) == DASH and moment("") == DASH
    assert moment("next tuesday") == "next tuesday"  # shown as it is, never an error page
