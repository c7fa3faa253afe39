"""Every time the suite sees in a JSON output or API answer is ``YYYY-MM-DDTHH:MM:SSZ``.

The README promises times in ISO 8601 UTC to the second with ``Z``
everywhere. Rather than a list of outputs that a new command would escape,
the helpers that run commands and call APIs (:func:`clirun.cli`,
:func:`consoles.api`) hand every JSON document they parse to :func:`collect`;
an autouse fixture (tests/conftest.py) checks what each test collected when
the test ends and fails it, naming the output and the value. Each xdist
worker checks its own tests. Cheap: one walk over documents already parsed.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["DATE_FIELDS", "collect", "collect_text", "drain", "violations"]

UTC_SECOND = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
#: A value that looks like a time or a date (what the check looks at).
_TIME_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}.*)?")
#: Members that hold a day, not a time (``"2027-12-31"`` is right there).
DATE_FIELDS = frozenset({"last_day", "license_last_day", "regenerate_after"})

_seen: list[tuple[str, Any]] = []


def collect(source: str, document: Any) -> None:
    """Keep ``document`` (parsed JSON) for the check at the end of the test."""
    _seen.append((source, document))


def collect_text(source: str, text: str) -> None:
    """Keep ``text`` when it is a JSON document (a command's stdout); anything else is ignored."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return
    try:
        collect(source, json.loads(stripped))
    except ValueError:
        return


def drain() -> list[tuple[str, Any]]:
    """What was collected since the last call, forgotten."""
    taken = list(_seen)
    _seen.clear()
    return taken


def violations(document: Any, path: str = "$") -> list[str]:
    """Each time-like string in ``document`` that is not ``YYYY-MM-DDTHH:MM:SSZ``, with its path."""
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key in DATE_FIELDS and (value is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value))):
                continue
            found += violations(value, f"{path}.{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += violations(value, f"{path}[{index}]")
    elif isinstance(document, str) and _TIME_LIKE.fullmatch(document) and not UTC_SECOND.fullmatch(document):
        found.append(f"{path} = {document!r}")
    return found
