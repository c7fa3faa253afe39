"""``--out`` files: a token or a revocation list, written without ever replacing key material.

An earlier file of the same kind (a compact JWS of the same ``typ``) is
replaced; any other existing file only with ``force``; nothing inside the
protected folders (the keys, the ledger), and no key material anywhere.

Example:
    >>> save_token("server.token", token, protected=[Path("keys")])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from keytool.outputs import write_output
from verifier.claims import TOKEN_TYPE
from verifier.encoding import EncodingError, b64url_decode, json_loads_strict
from verifier.revocations import REVOCATIONS_TYPE

__all__ = ["save_revocation_list", "save_token"]


def _is_jws_of(typ: str) -> Callable[[bytes], bool]:
    """Whether a file holds a compact JWS of type ``typ``, as an earlier ``--out`` wrote it."""

    def check(data: bytes) -> bool:
        parts = data.strip().split(b".")
        if len(parts) != 3:
            return False
        try:
            header = json_loads_strict(b64url_decode(parts[0].decode("ascii")))
        except (EncodingError, UnicodeDecodeError):
            return False
        return isinstance(header, dict) and header.get("typ") == typ

    return check


_is_token = _is_jws_of(TOKEN_TYPE)
_is_revocation_list = _is_jws_of(REVOCATIONS_TYPE)


def save_token(
    path: str | os.PathLike[str], token: str, *, protected: Sequence[Path], force: bool = False
) -> None:
    """Write a token to ``path`` (``--out``) without ever replacing key material.

    Raises:
        OutputRefusedError: ``path`` must not be replaced.
    """
    _save(path, token, _is_token, protected, force)


def save_revocation_list(
    path: str | os.PathLike[str], text: str, *, protected: Sequence[Path], force: bool = False
) -> None:
    """Write a revocation list to ``path`` (``--out``), with the same care as a token.

    Raises:
        OutputRefusedError: ``path`` must not be replaced.
    """
    _save(path, text, _is_revocation_list, protected, force)


def _save(
    path: str | os.PathLike[str],
    text: str,
    earlier: Callable[[bytes], bool],
    protected: Sequence[Path],
    force: bool,
) -> None:
    write_output(
        Path(path),
        text.strip().encode() + b"\n",
        mode=0o644,
        earlier_output=earlier,
        protected=list(protected),
        force=force,
    )
