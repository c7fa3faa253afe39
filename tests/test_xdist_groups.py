"""The suite's xdist groups hold: a test in an ``xdist_group`` shares a worker with its group.

The timing tests must never overlap one another, and a module's world is built
once, because ``make test`` runs with ``--dist loadgroup``. xdist marks a grouped
test by a suffix of its node id; a pytest/xdist pair that loses it (pytest 9.2
with xdist 3.8 did: pytest-dev/pytest-xdist#1386) ignores every group without a
word, and this test is that word.
"""

from __future__ import annotations

import pytest


def test_every_grouped_test_is_scheduled_with_its_group(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("checks the scheduling of make test: run under pytest-xdist with --dist loadgroup")
    grouped = [item for item in request.session.items if item.get_closest_marker("xdist_group")]
    lost = [item.nodeid for item in grouped if "@" not in item.nodeid]
    assert not lost, (
        f"--dist loadgroup ignores the xdist_group of {len(lost)} of {len(grouped)} tests, e.g. {lost[:3]}: "
        "this pytest-xdist cannot group under this pytest (see the pin in pyproject.toml)"
    )
