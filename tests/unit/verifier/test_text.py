"""The one rule for characters that hide or control text, and how they are shown."""

from __future__ import annotations

import pytest

from verifier.text import escaped, hidden_characters, hidden_ranges, terminal_safe


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\x7f", "\x85", "\x9b", "\xad", "\u061c", "\u200b", "\u200e", "\u200f", "\u2028", "\u2029",
     "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff", "\U000e0041", "\ud800"],
)
def test_controls_bidi_and_invisible_format_characters_are_hidden(char: str) -> None:
    assert hidden_characters(f"a{char}b") == char
    assert char not in terminal_safe(f"a{char}b")


@pytest.mark.parametrize("text", ["Acme GmbH", "Société Générale — Paris", "\u0634\u0631\u06a9\u062a\u200c\u0647\u0627", "👩\u200d💻 dev", "北京", "a\\x9b"])
def test_visible_text_and_joiners_are_kept_as_they_are(text: str) -> None:
    assert hidden_characters(text) == ""
    assert terminal_safe(text) == text


def test_escapes_are_the_python_spellings() -> None:
    assert [escaped(c) for c in "\x1b\x9b\u202e\U000e0041"] == ["\\x1b", "\\x9b", "\\u202e", "\\U000e0041"]
    assert terminal_safe("Acme\u202e\x9b2J") == "Acme\\u202e\\x9b2J"
    assert terminal_safe(terminal_safe("x\x1b")) == terminal_safe("x\x1b")  # escaping twice changes nothing more


def test_the_ranges_name_exactly_the_hidden_characters() -> None:
    ranged = {chr(p) for first, last in hidden_ranges() for p in range(ord(first), ord(last) + 1)}
    every = {chr(p) for p in range(0x110000) if not 0xD800 <= p <= 0xDFFF}
    assert ranged == {c for c in every if hidden_characters(c)}
