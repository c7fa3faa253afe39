"""QR codes for carrying request codes, renewal codes and tokens across an air gap.

segno draws them; it is imported only when a QR code is asked for, so panels
that never print one never load it.

Example:
    >>> print(qr_terminal("LICET1.eyJ2Ijox..."))  # doctest: +SKIP
    >>> qr_png("LICET1.eyJ2Ijox...", "request.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
from typing import Any

from verifier.errors import BadInputError

__all__ = ["qr_png", "qr_svg", "qr_terminal"]

# A QR code holds at most 2953 bytes (version 40, low error correction).
_MAX_QR_BYTES = 2953


def _make(text: str) -> Any:
    try:
        import segno
    except ImportError as err:
        raise BadInputError("QR codes need segno: pip install segno") from err
    if not isinstance(text, str) or not text:
        raise BadInputError("nothing to put in a QR code")
    if len(text.encode()) > _MAX_QR_BYTES:
        raise BadInputError(f"text of {len(text)} characters is too long for one QR code")
    try:
        return segno.make(text, error="l", micro=False)
    except (ValueError, segno.DataOverflowError) as err:
        raise BadInputError(f"cannot make a QR code: {err}") from err


def qr_terminal(text: str) -> str:
    """The QR code of ``text`` drawn with block characters for a terminal."""
    out = io.StringIO()
    _make(text).terminal(out=out, compact=True)
    return out.getvalue()


def qr_png(text: str, path: str | os.PathLike[str], *, scale: int = 4) -> None:
    """Write the QR code of ``text`` as a PNG image.

    Raises:
        BadInputError: the file cannot be written.
    """
    try:
        _make(text).save(os.fspath(path), kind="png", scale=scale, border=4)
    except OSError as err:
        raise BadInputError(f"cannot write {os.fspath(path)}: {err.strerror or err}") from err


def qr_svg(text: str, *, scale: int = 3) -> str:
    """The QR code of ``text`` as an inline ``<svg>`` element (for web pages)."""
    svg: str = _make(text).svg_inline(scale=scale, title="QR code")
    return svg
