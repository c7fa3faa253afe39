r"""Text that is safe to show people: the one rule for characters that hide or control text.

Free text the provider types (a customer's name) is shown on terminals and
pages. Some characters there do something other than show themselves: C0
and C1 controls (``ESC``, ``CSI`` U+009B) drive the terminal, bidi controls
(U+202E, U+2066, ...) reorder what follows, other format characters (zero
width space, soft hyphen, tags) hide text, and line separators break a line.
:func:`hidden_characters` finds them, so that such text can be refused where
it comes in; :func:`terminal_safe` escapes them wherever text is printed, for
text stored before it was refused. Shared by every package (public for that
reason).

Example:
    >>> terminal_safe("Acme\u202e Corp\x9b2J")
    'Acme\\u202e Corp\\x9b2J'
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["escaped", "hidden_characters", "hidden_ranges", "terminal_safe"]

#: Controls (Cc), format characters (Cf, the bidi controls among them), lone
#: surrogates (Cs, which no terminal can even be sent) and line/paragraph separators.
_HIDING = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: The zero-width joiners are format characters that spell words (Persian,
#: Indic scripts, emoji sequences); they neither move nor hide other text.
_JOINERS = frozenset({"\u200c", "\u200d"})


def _hides(char: str) -> bool:
    return unicodedata.category(char) in _HIDING and char not in _JOINERS


def hidden_characters(text: str) -> str:
    """The characters of ``text`` that control a terminal or hide or reorder text, in order."""
    return "".join(char for char in text if _hides(char))


@functools.cache
def hidden_ranges() -> tuple[tuple[str, str], ...]:
    """Every character :func:`hidden_characters` finds, as ``(first, last)`` ranges.

    For documents that state the rule as a pattern (a JSON Schema). Lone
    surrogates are left out: pattern engines cannot name them (text holding
    one is still refused by :func:`hidden_characters`). Scans every code
    point (about a tenth of a second), so only when asked, and once.
    """
    ranges: list[tuple[str, str]] = []
    for point in range(0x110000):
        char = chr(point)
        if 0xD800 <= point <= 0xDFFF or not _hides(char):
            continue
        if ranges and ord(ranges[-1][1]) == point - 1:
            ranges[-1] = (ranges[-1][0], char)
        else:
            ranges.append((char, char))
    return tuple(ranges)


def escaped(char: str) -> str:
    r"""``char`` as a Python-style escape: ``\x9b``, ``\u202e`` or ``\U000e0001``."""
    point = ord(char)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def terminal_safe(text: str) -> str:
    """``text`` with every character :func:`hidden_characters` finds written as an escape."""
    return "".join(escaped(char) if _hides(char) else char for char in text)
