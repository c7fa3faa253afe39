"""Hypothesis: the console's search and pagination show exactly the licenses a full scan would."""

from __future__ import annotations

import datetime as dt
import ipaddress
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import FakeClock, make_issuer

WORDS = ["Acme", "acme", "Zebra", "Müller", "STRASSE", "Straße", "o'Brien", 'say "hi"', "x\\y", "日本", "web", "host"]
PRODUCTS = ["alpha", "beta", "gamma"]
# One worker runs this module, so the 700-license world below is built once, not once per worker.
pytestmark = pytest.mark.xdist_group("license_search")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, FakeClock]:
    clock = FakeClock()
    iss = make_issuer(tmp_path_factory.mktemp("search"), clock)
    rng = random.Random(7)
    for i in range(700):  # a little under three index pages
        clock.advance(seconds=1)
        customer = None if rng.random() < 0.2 else " ".join(rng.sample(WORDS, 2)) + f" {i}"
        ip = None if rng.random() < 0.5 else f"203.0.113.{rng.randrange(1, 40)}"
        view = iss.create_license(rng.choice(PRODUCTS), customer=customer, ip=ip, days=rng.choice([None, 1, 400]),
                                 new_product=True)
        if rng.random() < 0.1:
            iss.revoke(view.license_id)
    clock.advance(days=2)  # the one-day licenses have expired
    return iss, clock


@pytest.fixture(scope="module")
def full_scan(world: tuple[Any, FakeClock]) -> list[Any]:
    """Every license, newest first: the world does not change, so it is read once."""
    return sorted(world[0].licenses(), key=lambda v: v.record.created_at, reverse=True)


def expected(views: list[Any], text: str | None, product: str | None, status: str | None) -> list[str]:
    text = (text or "").strip() or None

    def found(v: Any) -> bool:
        if text is None:
            return True
        r = v.record
        if text.upper().startswith("LIC-") and len(text) == 14:
            return r.license_id == text.upper()
        try:
            return r.ip == str(ipaddress.ip_address(text))
        except ValueError:
            activation = r.activation
            fields = (r.license_id, r.customer, r.ip, activation and activation.hostname, activation and activation.activation_id)
            return any(text.lower() in (value or "").lower() for value in fields)

    return [v.license_id for v in views
            if found(v) and (product is None or v.record.product == product) and (status is None or v.state == status)]


texts = st.one_of(
    st.none(),
    st.sampled_from(WORDS),
    st.sampled_from(WORDS).map(lambda w: w[1:4]),
    st.sampled_from(WORDS).map(str.swapcase),
    st.integers(0, 699).map(str),
    st.integers(1, 40).map(lambda n: f"203.0.113.{n}"),
    st.text(min_size=1, max_size=4),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, product=st.one_of(st.none(), st.sampled_from(PRODUCTS)),
       status=st.one_of(st.none(), st.sampled_from(["issued", "revoked", "expired", "activated"])),
       limit=st.integers(1, 200))
def test_paging_through_a_search_yields_exactly_the_full_scan(world: tuple[Any, FakeClock], full_scan: list[Any],
                                                             text: str | None,
                                                             product: str | None, status: str | None, limit: int) -> None:
    iss, _ = world
    if text is not None and any(ord(c) < 32 or c in "\x7f" for c in text):
        return  # such text cannot be typed into the console's search
    seen: list[str] = []
    cursor = None
    while True:
        page = iss.search(text=text, product=product, status=status, cursor=cursor, limit=limit)
        assert len(page.items) <= limit
        seen += [v.license_id for v in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected(full_scan, text, product, status)


def test_a_whole_id_finds_its_license(world: tuple[Any, FakeClock]) -> None:
    iss, _ = world
    some = iss.licenses()[123]
    assert [v.license_id for v in iss.search(text=some.license_id.lower()).items] == [some.license_id]
    assert dt.datetime.now(dt.UTC) > some.record.created_at - dt.timedelta(days=3650)
    assert Path(iss.ledger.folder / "index" / "000002.json").exists()  # the world spans three pages
