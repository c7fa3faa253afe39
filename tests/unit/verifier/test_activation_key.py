from __future__ import annotations

import secrets

import pytest

from verifier import ActivationKeyFormatError, normalize_key
from verifier.activation_key import KEY_BITS, key_from_bytes

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_key_has_six_groups_of_four_and_over_100_bits() -> None:
    key = key_from_bytes(secrets.token_bytes(32))
    groups = key.split("-")
    assert [len(g) for g in groups] == [4] * 6
    assert KEY_BITS >= 100


def test_input_is_case_dash_and_space_insensitive_and_folds_lookalikes() -> None:
    key = key_from_bytes(bytes.fromhex("00" * 15))  # all zeros: 0000-…
    typed = key.lower().replace("-", " ").replace("0", "o")
    assert normalize_key(typed) == key


def test_distinct_secrets_give_distinct_keys() -> None:
    keys = {key_from_bytes(secrets.token_bytes(15)) for _ in range(500)}
    assert len(keys) == 500


@pytest.mark.parametrize("position", range(24))
def test_every_single_character_typo_is_caught(position: int) -> None:
    key = key_from_bytes(secrets.token_bytes(15)).replace("-", "")
    for replacement in ALPHABET:
        if replacement == key[position]:
            continue
        typo = key[:position] + replacement + key[position + 1 :]
        with pytest.raises(ActivationKeyFormatError, match="typo"):
            normalize_key(typo)


def test_swapping_neighbours_is_caught_in_most_cases() -> None:
    caught = total = 0
    for _ in range(200):
        key = key_from_bytes(secrets.token_bytes(15)).replace("-", "")
        for i in range(23):
            if key[i] == key[i + 1]:
                continue
            swapped = key[:i] + key[i + 1] + key[i] + key[i + 2 :]
            total += 1
            try:
                normalize_key(swapped)
            except ActivationKeyFormatError:
                caught += 1
    assert caught / total > 0.95


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "24 characters"),
        ("ABCD-EFGH", "24 characters"),
        ("ABCD-EFGH-JKMN-PQRS-TVWX-YZ0U", "invalid character 'U'"),
        ("x" * 65, "24 characters"),
        (None, "24 characters"),
        (12345, "24 characters"),
    ],
)
def test_malformed_keys_get_a_clear_message(typed: object, message: str) -> None:
    with pytest.raises(ActivationKeyFormatError, match=message):
        normalize_key(typed)
