from __future__ import annotations

import pytest
from support import server_fp

from verifier import BadInputError
from verifier.fingerprint import fingerprint, fingerprint_from_sources, matches, parse_fingerprint


def test_same_server_matches_itself() -> None:
    assert matches(server_fp("alpha"), server_fp("alpha"))


def test_different_servers_never_match() -> None:
    assert not matches(server_fp("alpha"), server_fp("beta"))


def test_products_on_one_server_are_not_linkable() -> None:
    a = fingerprint_from_sources("panel-a", "mid-1", "uuid-1", ["52:54:00:00:00:01"])
    b = fingerprint_from_sources("panel-b", "mid-1", "uuid-1", ["52:54:00:00:00:01"])
    assert not set(a) & set(b)


def test_replaced_nic_keeps_the_server() -> None:
    bound = fingerprint_from_sources("p", "mid", "uuid", ["52:54:00:00:00:01"])
    now = fingerprint_from_sources("p", "mid", "uuid", ["52:54:00:00:00:99"])
    assert matches(bound, now)


def test_added_nic_keeps_the_server() -> None:
    bound = fingerprint_from_sources("p", "mid", "uuid", ["52:54:00:00:00:01"])
    now = fingerprint_from_sources("p", "mid", "uuid", ["52:54:00:00:00:01", "52:54:00:00:00:02"])
    assert matches(bound, now)


def test_reinstalled_os_on_same_hardware_keeps_the_server() -> None:
    bound = fingerprint_from_sources("p", "old-machine-id", "uuid", ["52:54:00:00:00:01"])
    now = fingerprint_from_sources("p", "new-machine-id", "uuid", ["52:54:00:00:00:01"])
    assert matches(bound, now)


def test_clone_sharing_only_the_machine_id_does_not_match() -> None:
    bound = fingerprint_from_sources("p", "shared-id", "uuid-a", ["52:54:00:00:00:01"])
    clone = fingerprint_from_sources("p", "shared-id", "uuid-b", ["52:54:00:00:00:02"])
    assert not matches(bound, clone)


def test_a_crafted_fingerprint_cannot_cover_two_servers() -> None:
    a = server_fp("alpha", nics=2)
    b = server_fp("beta", nics=2)
    # Any mix of the two servers' components matches at most one of them.
    import itertools

    pool = list(a) + list(b)
    for size in range(1, len(pool) + 1):
        for combo in itertools.combinations(pool, size):
            try:
                crafted = parse_fingerprint(list(combo))
            except BadInputError:
                continue
            assert not (matches(crafted, a) and matches(crafted, b)), combo


def test_machine_id_override_replaces_hardware() -> None:
    assert fingerprint("p", machine_id="container-7") == fingerprint_from_sources("p", "container-7")
    assert not matches(fingerprint("p", machine_id="c-1"), fingerprint("p", machine_id="c-2"))


def test_real_fingerprint_is_computed_once() -> None:
    assert fingerprint("p") is fingerprint("p")


def test_empty_machine_id_is_refused() -> None:
    with pytest.raises(BadInputError):
        fingerprint("p", machine_id="  ")


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        "mid:" + "0" * 32,
        ["mid:xyz"],
        ["mid:" + "0" * 32, "mid:" + "1" * 32],
        ["mid:" + "0" * 32, "mid:" + "0" * 32],
        ["mac:" + f"{i:032x}" for i in range(9)],
        [1, 2],
    ],
)
def test_malformed_fingerprints_are_refused(value: object) -> None:
    with pytest.raises(BadInputError):
        parse_fingerprint(value)
