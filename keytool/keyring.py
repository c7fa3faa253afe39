"""The provider's signing keys: a keyring of Ed25519 keys with a status each.

The folder (0700) holds ``keyring.json`` (every key's id, public key, status
and dates; 0600) and one ``<kid>.pem`` per key (private: PKCS#8, mode 0600, created
with O_EXCL so it is never overwritten, optionally encrypted). Exactly one key
is ``active`` and signs; ``retired`` keys still verify tokens they signed
before retirement; ``revoked`` keys verify nothing and are left out of the
exported trust set.

Example:
    >>> ring = Keyring("keys")  # doctest: +SKIP
    >>> first = ring.new()  # doctest: +SKIP
    >>> second = ring.rotate()  # first is now retired  # doctest: +SKIP
    >>> ring.export("trusted_keys.json")  # what panels ship  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keytool.errors import (
    KeyringError,
    KeyringMissingError,
    NoActiveKeyError,
    PassphraseError,
    PrivateKeyError,
)
from keytool.outputs import write_output
from keytool.signing import TokenSigner
from verifier.clock import Clock, now_from, utc_now
from verifier.encoding import EncodingError, b64url_decode, b64url_encode, json_loads_strict
from verifier.fileio import (
    LockTimeout,
    atomic_write,
    create_exclusive,
    file_lock,
    os_error_words,
    private_dir,
)
from verifier.keys import UnsafeKeyError, key_id, load_public_key
from verifier.trust import KeyStatus, TrustedKey, TrustedKeys

__all__ = [
    "GITIGNORE",
    "ActiveSigner",
    "KeyRecord",
    "Keyring",
    "MIN_PASSPHRASE",
    "TRUSTED_KEYS_FILE",
    "keep_out_of_git",
]

KEYRING_FILE = "keyring.json"
TRUSTED_KEYS_FILE = "trusted_keys.json"
_LOCK_FILE = ".keyring.lock"
#: What ``keytool new`` and ``issuer init`` write as ``<keys>/.gitignore``: everything in
#: the keys folder stays out of git but this file, a README and the exported trust set
#: (public, what panels ship) — so ``git add -A`` never stages a private key or secret,
#: whatever else the folder comes to hold.
GITIGNORE = """\
# Written by keytool: nothing private here may reach git. Everything in this
# folder is ignored but this file, a README and the exported trust set.
*
!.gitignore
!README.md
!trusted_keys.json
"""
_MAX_KEY_FILE = 64 * 1024
MIN_PASSPHRASE = 8


@dataclass(frozen=True)
class KeyRecord:
    """One key in the keyring (public facts only).

    Attributes:
        kid: the key id (derived from the public key).
        public_bytes: the raw Ed25519 public key.
        status: ``active``, ``retired`` or ``revoked``.
        created_at: start of the key's validity window.
        retired_at: end of its window once rotated out.
        revoked_at: when it was revoked.
    """

    kid: str
    public_bytes: bytes
    status: str
    created_at: _dt.datetime
    retired_at: _dt.datetime | None = None
    revoked_at: _dt.datetime | None = None

    def trusted(self) -> TrustedKey:
        """The panel-side view of this key."""
        return TrustedKey(
            kid=self.kid,
            public_bytes=self.public_bytes,
            status=self.status,
            not_before=self.created_at.replace(microsecond=0),
            not_after=self.retired_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form (keyring file and ``keytool list --json``)."""
        return {
            "kid": self.kid,
            "public": b64url_encode(self.public_bytes),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "retired_at": _iso(self.retired_at),
            "revoked_at": _iso(self.revoked_at),
        }

    @classmethod
    def from_dict(cls, data: object) -> KeyRecord:
        """Parse and check one keyring entry.

        Raises:
            KeyringError: malformed, unsafe key, or kid not derived from the key.
        """
        if not isinstance(data, dict):
            raise KeyringError("keyring entry is not an object")
        try:
            raw = b64url_decode(str(data["public"]))
            load_public_key(raw)
            record = cls(
                kid=str(data["kid"]),
                public_bytes=raw,
                status=str(data["status"]),
                created_at=_parse_time(data["created_at"]),
                retired_at=_parse_time(data.get("retired_at")),
                revoked_at=_parse_time(data.get("revoked_at")),
            )
        except (KeyError, TypeError, ValueError, EncodingError) as err:
            raise KeyringError(f"keyring entry is malformed ({err})") from err
        except UnsafeKeyError as err:
            raise KeyringError(f"keyring entry {data.get('kid')!r}: {err.message}") from err
        if record.kid != key_id(raw) or record.status not in KeyStatus.ALL:
            raise KeyringError(f"keyring entry {record.kid!r} is inconsistent")
        return record


def _iso(moment: _dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse_time(value: object) -> Any:
    if value is None:
        return None
    moment = _dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError("naive timestamp")
    return moment


def read_private_file(path: Path, missing: str, limit: int = _MAX_KEY_FILE) -> bytes:
    """Read a secret file, refusing one that others may read (or a symlink to one).

    Raises:
        PrivateKeyError: missing (with the message ``missing``), unreadable, or
            group/world-accessible.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise PrivateKeyError(missing) from None
    except OSError as err:
        raise PrivateKeyError(f"cannot open {path}: {os_error_words(err)}") from err
    with os.fdopen(fd, "rb") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise PrivateKeyError(f"{path} is readable by others (mode {mode:o}); run chmod 600")
        return handle.read(limit)


class Keyring:
    """The signing keys in one folder.

    Args:
        folder: the keys folder (created by the first :meth:`new`).
        clock: time source for key dates.
        lock_timeout: seconds to wait for another keytool process.
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, clock: Clock = utc_now, lock_timeout: float = 10.0
    ) -> None:
        self.folder = Path(folder)
        self._clock = clock
        self._lock_timeout = lock_timeout

    # -- reading -------------------------------------------------------------

    def records(self) -> list[KeyRecord]:
        """Every key, oldest first.

        Raises:
            KeyringError: no keyring in the folder, or it is damaged.
        """
        path = self.folder / KEYRING_FILE
        try:
            with open(path, "rb") as handle:
                data = handle.read(_MAX_KEY_FILE * 16)
        except FileNotFoundError:
            raise KeyringMissingError(
                f"no keyring in {self.folder.resolve()} — point --keys (or LICET_KEYS) at the "
                "provider's keys folder; 'keytool new' there would make a key no panel trusts"
            ) from None
        except OSError as err:
            raise KeyringError(f"cannot read {path}: {os_error_words(err)}") from err
        try:
            doc = json_loads_strict(data)
        except EncodingError as err:
            raise KeyringError(f"keyring {path} is damaged ({err})") from err
        if (
            not isinstance(doc, dict)
            or doc.get("version") != 1
            or not isinstance(doc.get("keys"), list)
        ):
            raise KeyringError(f"keyring {path} has an unknown layout")
        records = [KeyRecord.from_dict(entry) for entry in doc["keys"]]
        if len({r.kid for r in records}) != len(records):
            raise KeyringError(f"keyring {path} lists a key twice")
        if sum(r.status == KeyStatus.ACTIVE for r in records) > 1:
            raise KeyringError(f"keyring {path} has more than one active key")
        return records

    def active(self) -> KeyRecord:
        """The key that signs new tokens.

        Raises:
            NoActiveKeyError: there is none.
        """
        for record in self.records():
            if record.status == KeyStatus.ACTIVE:
                return record
        raise NoActiveKeyError(
            f"no active signing key in {self.folder.resolve()} (every key is retired or "
            "revoked) — run 'keytool rotate' there to make one"
        )

    def trusted_keys(self) -> TrustedKeys:
        """The trust set panels should use: every key that may still verify something.

        The active key and retired keys appear, each with its validity window;
        revoked keys never do. Only the absence of a key protects a panel whose
        JOSE library knows nothing of licet's status member: a standard JWKS
        consumer trusts every key it is given.

        Raises:
            KeyringError: every key is revoked, so the set would be empty.
        """
        usable = [r.trusted() for r in self.records() if r.status != KeyStatus.REVOKED]
        if not usable:
            raise KeyringError(
                "no key may verify tokens (every key is revoked) — run 'keytool new' first"
            )
        return TrustedKeys(usable)

    def signer(self, passphrase: bytes | None = None) -> TokenSigner:
        """Load the active private key and return a signer for it.

        Raises:
            NoActiveKeyError: no active key.
            PrivateKeyError: the key file is missing, readable by others, or damaged.
            PassphraseError: wrong or missing passphrase.
        """
        record = self.active()
        return TokenSigner(self._load_private(record, passphrase), record.kid)

    def stamp(self) -> tuple[int, ...] | None:
        """What changes whenever the keyring file is rewritten (``None`` if there is none)."""
        try:
            st = os.stat(self.folder / KEYRING_FILE)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    # -- changing ------------------------------------------------------------

    def new(self, passphrase: bytes | None = None) -> KeyRecord:
        """Create the first key (it becomes active).

        Raises:
            KeyringError: an active key exists already (use :meth:`rotate`).
        """
        with self._locked(create=True):
            records = self._records_or_empty()
            if any(r.status == KeyStatus.ACTIVE for r in records):
                raise KeyringError("keyring already has an active key — use 'keytool rotate'")
            record = self._generate(passphrase)
            self._save([*records, record], new_key=record)
            return record

    def rotate(self, passphrase: bytes | None = None) -> KeyRecord:
        """Make a new active key and retire the previous one.

        Raises:
            KeyringError: no keyring yet.
        """
        with self._locked():
            records = self.records()
            now = now_from(self._clock)
            updated = [
                replace(r, status=KeyStatus.RETIRED, retired_at=now)
                if r.status == KeyStatus.ACTIVE
                else r
                for r in records
            ]
            record = self._generate(passphrase)
            self._save([*updated, record], new_key=record)
            return record

    def revoke(self, kid: str) -> KeyRecord:
        """Revoke a key: it leaves the exported trust set.

        Tokens it signed stop verifying on every panel that receives the newly
        exported file; a panel holding an older file still trusts the key.

        Raises:
            KeyringError: no such key, or already revoked.
        """
        with self._locked():
            records = self.records()
            matches = [r for r in records if r.kid == kid]
            if not matches:
                raise KeyringError(f"no key {kid!r} in the keyring")
            if matches[0].status == KeyStatus.REVOKED:
                raise KeyringError(f"key {kid} is already revoked")
            revoked = replace(
                matches[0], status=KeyStatus.REVOKED, revoked_at=now_from(self._clock)
            )
            self._save([revoked if r.kid == kid else r for r in records])
            return revoked

    def export(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write :meth:`trusted_keys` as a JWKS file (public, mode 0644) and return its path.

        An earlier export is replaced; any other existing file only with
        ``force``; key material, the keyring and ledger files never.

        Raises:
            KeyringError: every key is revoked, or the file cannot be written.
            OutputRefusedError: ``path`` must not be replaced.
        """
        out = Path(path)
        body = _json_bytes(self.trusted_keys().to_jwks())
        protected = [self.folder / KEYRING_FILE, *self.folder.glob("*.pem")]
        try:
            write_output(
                out, body, mode=0o644, earlier_output=_is_jwks, protected=protected, force=force
            )
        except OSError as err:
            raise KeyringError(f"cannot write {out}: {os_error_words(err, writing=True)}") from err
        return out

    # -- internals -------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, create: bool = False) -> Iterator[None]:
        """Hold the keyring lock; only ``create`` (the first key) makes the folder."""
        with contextlib.ExitStack() as stack:
            try:
                if create:
                    private_dir(self.folder)  # an existing folder others could write to: 0700
                    keep_out_of_git(self.folder)
                stack.enter_context(file_lock(self.folder / _LOCK_FILE, self._lock_timeout))
            except LockTimeout:
                raise KeyringError("keyring is busy (another keytool is running)") from None
            except FileNotFoundError:
                raise KeyringError(f"no keyring in {self.folder} — run 'keytool new'") from None
            except OSError as err:
                raise KeyringError(
                    f"cannot use the keys folder {self.folder}: {os_error_words(err, writing=True)}"
                ) from err
            yield

    def _records_or_empty(self) -> list[KeyRecord]:
        if not (self.folder / KEYRING_FILE).exists():
            return []
        return self.records()

    def _save(self, records: list[KeyRecord], new_key: KeyRecord | None = None) -> None:
        """Write the keyring (0600: the provider's own state).

        Raises:
            KeyringError: the write failed; the keyring is as it was, and the
                private key file of ``new_key``, which it would have listed, is removed.
        """
        doc = {"version": 1, "keys": [r.to_dict() for r in records]}
        path = self.folder / KEYRING_FILE
        try:
            atomic_write(path, _json_bytes(doc))
        except OSError as err:
            if new_key is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._key_path(new_key.kid))
            raise KeyringError(
                f"cannot write {path}: {os_error_words(err, writing=True)}; "
                "the keyring is unchanged"
            ) from err

    def _generate(self, passphrase: bytes | None) -> KeyRecord:
        private = Ed25519PrivateKey.generate()
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if passphrase is not None:
            if len(passphrase) < MIN_PASSPHRASE:
                raise PassphraseError(f"passphrase must be at least {MIN_PASSPHRASE} characters")
            encryption = serialization.BestAvailableEncryption(passphrase)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        kid = key_id(raw)
        path = self._key_path(kid)
        try:
            create_exclusive(path, pem)
        except FileExistsError:  # a 64-bit kid collision, or a file planted in the folder
            raise KeyringError(f"key file for {kid} exists already; not overwritten") from None
        except OSError as err:
            raise KeyringError(
                f"cannot write {path}: {os_error_words(err, writing=True)}; "
                "the keyring is unchanged"
            ) from err
        return KeyRecord(
            kid=kid, public_bytes=raw, status=KeyStatus.ACTIVE, created_at=now_from(self._clock)
        )

    def _key_path(self, kid: str) -> Path:
        return self.folder / f"{kid}.pem"

    def _load_private(self, record: KeyRecord, passphrase: bytes | None) -> Ed25519PrivateKey:
        path = self._key_path(record.kid)
        pem = read_private_file(path, f"private key file {path} is missing")
        try:
            key = serialization.load_pem_private_key(pem, password=passphrase)
        except TypeError as err:  # cryptography: password given but not needed, or vice versa
            needs = b"ENCRYPTED" in pem
            raise PassphraseError(
                f"private key {record.kid} "
                + (
                    "is encrypted — give its passphrase: --passphrase-file FILE, or the "
                    "environment variable LICET_KEY_PASSPHRASE_FILE (a file) or "
                    "LICET_KEY_PASSPHRASE"
                    if needs
                    else "is not encrypted"
                )
            ) from err
        except ValueError as err:
            if b"ENCRYPTED" in pem:
                raise PassphraseError(f"wrong passphrase for private key {record.kid}") from err
            raise PrivateKeyError(f"private key {path} is damaged") from err
        except Exception as err:  # unsupported algorithms surface as other cryptography errors
            raise PrivateKeyError(f"private key {path} is not usable") from err
        if not isinstance(key, Ed25519PrivateKey):
            raise PrivateKeyError(f"private key {path} is not an Ed25519 key")
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if raw != record.public_bytes:
            raise PrivateKeyError(f"private key {path} does not match key {record.kid}")
        return key


class ActiveSigner:
    """A signer that always uses the keyring's *current* active key.

    A long-running signer (a server worker) must notice ``keytool rotate`` and
    ``keytool revoke`` made by another process: before each use the keyring
    file is checked (one ``stat``), and the signer is reloaded when it
    changed. A retired or revoked key therefore never signs again, and with no
    active key every signing is refused.

    Args:
        keyring: the keyring.
        passphrase: of the private keys, when encrypted.
    """

    def __init__(self, keyring: Keyring, passphrase: bytes | None = None) -> None:
        self._keyring = keyring
        self._passphrase = passphrase
        self._signer: TokenSigner | None = None
        self._stamp: tuple[int, ...] | None = None
        self._lock = threading.Lock()

    def get(self) -> TokenSigner:
        """The signer of the active key as the keyring says now.

        Raises:
            NoActiveKeyError: the keyring has no active key (e.g. it was revoked).
            PrivateKeyError | PassphraseError | KeyringError: the key cannot be loaded.
        """
        with self._lock:
            stamp = self._keyring.stamp()  # taken first: a change after it reloads next time
            if self._signer is None or stamp is None or stamp != self._stamp:
                self._signer = None
                self._signer = self._keyring.signer(self._passphrase)
                self._stamp = stamp
            return self._signer


def _is_jwks(data: bytes) -> bool:
    """Whether ``data`` is a trust set (JWKS) as an earlier export wrote it."""
    try:
        doc = json_loads_strict(data)
    except EncodingError:
        return False
    keys = doc.get("keys") if isinstance(doc, dict) else None
    return isinstance(keys, list) and all(isinstance(k, dict) and "kty" in k for k in keys)


def _json_bytes(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def keep_out_of_git(folder: Path) -> None:
    """Write :data:`GITIGNORE` into the keys ``folder``, unless it has a ``.gitignore`` already.

    Raises:
        OSError: it cannot be written.
    """
    with contextlib.suppress(FileExistsError):
        # 0600 like everything else in the (0700) keys folder: git reads it as its owner.
        create_exclusive(folder / ".gitignore", GITIGNORE.encode())
