"""Licenses: create, show, list and search, change, regenerate and revoke; the audit log.

Each change reads the license in one ledger transaction, has the policy
decide (:mod:`issuer.policy`) and the ledger keep the result with what it
implies. Views carry the current activation key unless the reader may not
see keys (a read-scope API token).

Example:
    >>> iss.licensing.create(product="ispmanager", days=365)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Final, TypeVar, cast

from issuer import policy
from issuer.addresses import canonical_ip
from issuer.ledger.api import LedgerBackend, LedgerInfo, LedgerTransaction
from issuer.licensing.minting import Minter, key_hash
from issuer.licensing.outbox import queue_events
from issuer.licensing.searching import WHOLE_ID, meaning
from issuer.licensing.views import LicenseDefaults, LicenseSummaryView, LicenseView, Page
from issuer.policy import revocations, terms
from issuer.records import (
    LicenseQuery,
    LicenseRecord,
    LicenseStatus,
    LoggedEvent,
    RevocationEntry,
    random_id,
)
from verifier.clock import Clock, now_from
from verifier.errors import (
    BadInputError,
    LicenseError,
    LicenseNotFoundError,
)

__all__ = [
    "KEEP",
    "PAGE_MAX",
    "Keep",
    "LicenseDefaults",
    "LicenseSummaryView",
    "LicenseView",
    "Licenses",
    "Page",
    "accepts_machine_id",
    "existing",
    "license_id_of",
    "random_id",
    "store",
]

T = TypeVar("T")

PAGE_MAX = 200  # licenses or events in one page of a list
_READ_ONE_BY_ONE = 100  # more licenses than this are read whole in one go


class Keep(enum.Enum):
    """The type of :data:`KEEP`: a sentinel the type checker can tell from ``None``."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP
"""Default of :meth:`Licenses.update` arguments: leave the field as it is."""


def existing(tx: LedgerTransaction, license_id: str | None) -> LicenseRecord:
    """The license with this id, locked in ``tx``.

    Raises:
        LicenseNotFoundError: no such license.
    """
    record = None if license_id is None else tx.license(license_id=license_id_of(license_id))
    if record is None:
        raise LicenseNotFoundError(f"no license {license_id!r}" if license_id else None)
    return record


def store(
    tx: LedgerTransaction,
    before: LicenseRecord,
    after: LicenseRecord,
    *,
    info: LedgerInfo,
    months: int,
) -> None:
    """Have ``tx`` keep ``after``, with the revocation entries the policy says it adds.

    The change's license events are queued for the webhook endpoints in the
    same transaction (:func:`issuer.licensing.outbox.queue_events`).
    """
    tx.replace(before, after, revoked=revocations.revocation_changes(before, after))
    queue_events(tx, before, after, lambda record: hook_view(record, info, months))


def hook_view(record: LicenseRecord, info: LedgerInfo, months: int) -> dict[str, Any]:
    """The license as the admin API shows it at its last event, without its activation key."""
    now = record.history[-1].at if record.history else record.created_at
    allowed = policy.next_regeneration(record, months, now)
    return LicenseView(
        record=record,
        activation_key=None,
        state=record.state(now),
        next_regeneration=allowed,
        regeneration_allowed=allowed <= now and record.status != LicenseStatus.REVOKED,
        lease_days=info.lease_days if record.lease_days is None else record.lease_days,
        accepts_machine_id=accepts_machine_id(record, info),
    ).to_dict()


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
        raise BadInputError("invalid cursor — use the next_cursor of a previous answer")
    return int(value)


def license_id_of(text: str) -> str:
    """A license id as typed, in any case, as the ledger keeps it (other text unchanged)."""
    stripped = text.strip() if isinstance(text, str) else text
    return stripped.upper() if isinstance(stripped, str) and WHOLE_ID.fullmatch(stripped) else text


def accepts_machine_id(record: LicenseRecord, info: LedgerInfo) -> bool:
    """Whether activations with a custom machine id are accepted (the license, else the ledger)."""
    if record.accept_machine_id is not None:
        return record.accept_machine_id
    return info.accept_machine_id


class _Fields:
    """Checks each input in turn and refuses every bad one together (a form marks each).

    One bad input is refused with its own error; several, with one
    :class:`BadInputError` naming each. Either way the error's ``fields``
    says what is wrong with each input at fault.
    """

    def __init__(self) -> None:
        self._errors: dict[str, LicenseError] = {}

    def check(self, name: str, rule: Callable[[], T]) -> T:
        """``rule()``; a refusal is kept against ``name`` (or the inputs it names)."""
        try:
            return rule()
        except BadInputError as err:
            for field in err.inputs or (name,):
                self._errors.setdefault(field, err)
            return cast(T, None)  # never used: done() refuses

    def refuse(self, name: str, message: str) -> None:
        """Keep a refusal of ``name`` decided by the caller."""
        self._errors.setdefault(name, BadInputError(message, inputs=(name,)))

    def done(self) -> None:
        """Refuse what was found wrong, if anything.

        Raises:
            BadInputError: one or more inputs are wrong.
        """
        found = list({id(e): e for e in self._errors.values()}.values())
        if not found:
            return
        fields = {name: err.message for name, err in self._errors.items()}
        if len(found) == 1:
            found[0].fields = fields
            found[0].inputs = tuple(dict.fromkeys((*found[0].inputs, *fields)))
            raise found[0]
        inputs = tuple(dict.fromkeys(n for e in found for n in (*e.inputs, *fields)))
        raise BadInputError("; ".join(e.message for e in found), inputs=inputs, fields=fields)


class Licenses:
    """The licenses of one ledger, as one actor changes and sees them.

    Args:
        ledger: the ledger.
        minter: the activation-key secret and the signing key.
        clock: time source.
        actor: who acts, for the audit history.
        sees_keys: whether views carry activation keys.
        regeneration_months: calendar months between key regenerations.
    """

    def __init__(
        self,
        ledger: LedgerBackend,
        minter: Minter,
        *,
        clock: Clock,
        actor: str,
        sees_keys: bool,
        regeneration_months: int,
    ) -> None:
        self.ledger = ledger
        self.actor = actor
        self.sees_keys = sees_keys
        self._minter = minter
        self._clock = clock
        self._months = regeneration_months

    def create(
        self,
        product: str,
        *,
        ip: str | None = None,
        days: int | None = None,
        expires: _dt.date | None = None,
        features: Iterable[str] = (),
        limits: Mapping[str, int] | None = None,
        customer: str | None = None,
        lease_days: int | None = None,
        accept_machine_id: bool | None = None,
        new_product: bool = False,
    ) -> LicenseView:
        """Create a license and its first activation key.

        Args:
            product: the product it licenses.
            ip: the server's public IP, for automatic activation.
            days: valid for this many days from now; or
            expires: valid through this date (UTC); neither means no expiry.
            features: enabled features.
            limits: numeric limits.
            customer: free text.
            lease_days: this license's lease (0: no lease — tokens last until
                the license expires, for customers who can never renew);
                ``None`` for the provider's default.
            accept_machine_id: whether activations with a custom machine id
                are accepted; ``None`` follows the ledger's default.
            new_product: ``product`` is a product the ledger has no license for yet.

        Raises:
            BadInputError: a malformed argument.
            UnknownProductError: ``product`` is new without ``new_product``, or
                differs only in case from a known product.
            NoActiveKeyError | KeyringMissingError: nothing could sign its tokens
                (a license nobody can redeem is not sold).
        """
        self._minter.check_signable()
        now = now_from(self._clock)
        fields = _Fields()
        record = self._new_record(
            product, ip, days, expires, features, limits, customer, now, fields=fields
        )
        if lease_days is not None:
            lease = fields.check("lease_days", lambda: terms.check_lease_days(lease_days))
            record = replace(record, lease_days=lease)
        if accept_machine_id is not None:
            if type(accept_machine_id) is not bool:
                fields.refuse("accept_machine_id", "accept_machine_id must be true, false or None")
            record = replace(record, accept_machine_id=accept_machine_id)
        fields.done()
        with self.ledger.transaction() as tx:
            terms.check_product(record.product, tx.products(), new_product=new_product)
            tx.add(record)
            info = self.ledger.info
            queue_events(tx, None, record, lambda r: hook_view(r, info, self._months))
        return self.view(record, now)

    def create_many(
        self,
        count: int,
        product: str,
        *,
        days: int | None = None,
        features: Iterable[str] = (),
    ) -> list[str]:
        """Bulk-create ``count`` licenses (imports, benchmarks); returns their ids.

        Uses the ledger's bulk path: one lock, each file written once, not
        journaled as a whole — for filling a new ledger. No webhook is sent:
        an import's licenses come from a system that knows them already.
        """
        now = now_from(self._clock)
        wanted = list(features)
        records = [
            self._new_record(product, None, days, None, wanted, None, None, now)
            for _ in range(count)
        ]
        self.ledger.add_many(records)
        return [r.license_id for r in records]

    def _new_record(
        self,
        product: str,
        ip: str | None,
        days: int | None,
        expires: _dt.date | None,
        features: Iterable[str],
        limits: Mapping[str, int] | None,
        customer: str | None,
        now: _dt.datetime,
        *,
        fields: _Fields | None = None,
    ) -> LicenseRecord:
        """A new license; every bad term is refused together (by ``fields.done()`` if given)."""
        check = fields or _Fields()
        when = "expires" if days is None else "days"
        license_id = random_id("LIC-", 10)
        record = LicenseRecord(
            license_id=license_id,
            product=check.check("product", lambda: terms.check_name("product", product)),
            customer=check.check("customer", lambda: terms.check_customer(customer)),
            ip=check.check("ip", lambda: None if ip is None else canonical_ip(ip)),
            created_at=now,
            expires_at=check.check(when, lambda: terms.expiry(days, expires, now)),
            features=check.check("features", lambda: terms.check_features(features)) or (),
            limits=check.check("limits", lambda: terms.check_limits(limits)) or {},
            generation=1,
            key_hash=key_hash(self._minter.key_for(license_id, 1)),
            status=LicenseStatus.ISSUED,
        )
        if fields is None:
            check.done()
        return policy.recorded(
            None, record, "created", actor=self.actor, now=now, detail="activation key generation 1"
        )

    def defaults(self) -> LicenseDefaults:
        """The provider's defaults for new licenses and the products the ledger knows."""
        info = self.ledger.info
        return LicenseDefaults(
            lease_days=info.lease_days,
            accept_machine_id=info.accept_machine_id,
            products=tuple(sorted(self.ledger.products())),
        )

    def show(self, license_id: str) -> LicenseView:
        """The license with its current key, activation and next regeneration date.

        Raises:
            LicenseNotFoundError: no such license.
        """
        return self.view(self.ledger.get(license_id_of(license_id)), now_from(self._clock))

    def all(self) -> list[LicenseView]:
        """Every license, oldest first."""
        now = now_from(self._clock)
        return [self.view(record, now) for record in self.ledger.licenses()]

    def regenerate(self, license_id: str) -> LicenseView:
        """Issue a new activation key, invalidate the old one, free the license.

        Raises:
            RegenerationTooSoonError: less than a calendar month since the last regeneration.
            LicenseRevokedError: the license is revoked.
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)
        with self.ledger.transaction() as tx:
            record = existing(tx, license_id)
            new_key = self._minter.key_for(record.license_id, record.generation + 1)
            updated = policy.regenerate(
                record,
                new_key_hash=key_hash(new_key),
                actor=self.actor,
                now=now,
                months=self._months,
            )
            store(tx, record, updated, info=self.ledger.info, months=self._months)
        return self.view(updated, now)

    def revoke(self, license_id: str) -> LicenseView:
        """Revoke a license (tokens already issued stay valid offline until they expire).

        Raises:
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)
        with self.ledger.transaction() as tx:
            record = existing(tx, license_id)
            updated = policy.revoke(record, actor=self.actor, now=now)
            store(tx, record, updated, info=self.ledger.info, months=self._months)
        return self.view(updated, now)

    def view(self, record: LicenseRecord, now: _dt.datetime) -> LicenseView:
        """The license as this reader sees it at ``now``."""
        allowed = policy.regeneration_allowed_from(record, self._months)
        lease_days = self.ledger.info.lease_days if record.lease_days is None else record.lease_days
        return LicenseView(
            record=record,
            activation_key=self._key(record.license_id, record.generation),
            state=record.state(now),
            next_regeneration=allowed,
            regeneration_allowed=allowed <= now and record.status != LicenseStatus.REVOKED,
            lease_days=lease_days,
            accepts_machine_id=accepts_machine_id(record, self.ledger.info),
            lease_days_effective=policy.effective_lease_days(lease_days, now, self._months),
            regeneration_months=self._months,
            provider_lease_days=self.ledger.info.lease_days,
        )

    def _key(self, license_id: str, generation: int) -> str | None:
        return self._minter.key_for(license_id, generation) if self.sees_keys else None

    def search(
        self,
        *,
        text: str | None = None,
        product: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[LicenseSummaryView]:
        """Licenses, newest first, a page at a time, optionally searched and filtered.

        What a support desk is told on the phone finds the license: a whole
        license id (any case), an IP address, the current activation key (with
        or without dashes, any case; a key replaced by a regeneration finds
        nothing), or text found in the id, customer, IP, activated hostname or
        activation id (case-insensitive).

        Args:
            text: what to search for.
            product: only this product.
            status: only this status (``issued``, ``activated``, ``revoked``, ``expired``).
            cursor: the ``next_cursor`` of the previous page.
            limit: licenses per page (1 to 200).

        Raises:
            BadInputError: a malformed filter, cursor or limit.
        """
        if type(limit) is not int or not 1 <= limit <= PAGE_MAX:
            raise BadInputError(f"limit must be a whole number from 1 to {PAGE_MAX}")
        if status is not None and status not in (*LicenseStatus.STORED, LicenseStatus.EXPIRED):
            raise BadInputError("status must be one of issued, activated, revoked, expired")
        if product is not None:
            terms.check_name("product", product)
        if text is not None and (not isinstance(text, str) or len(text) > 256):
            raise BadInputError("search text must be at most 256 characters")
        now = now_from(self._clock)
        query, direct = meaning(
            self.ledger,
            LicenseQuery(
                now=now, product=product, status=status, text=(text or "").strip() or None
            ),
        )
        before = _cursor(cursor)
        if before is None and direct is not None and len(direct) <= limit:
            # all of them, without the index
            items = sorted(
                (s for s in direct if query.matches(s)), key=lambda s: s.created_at, reverse=True
            )
        else:
            items, before = self.ledger.page(query, before=before, limit=limit)
        views = [
            LicenseSummaryView(
                summary=s,
                activation_key=self._key(s.license_id, s.generation),
                state=s.state(now),
            )
            for s in items
        ]
        return Page(views, None if before is None else str(before))

    def find(
        self,
        *,
        text: str | None = None,
        product: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[LicenseView]:
        """The licenses :meth:`search` finds, newest first, whole (``issuer license list``).

        Args:
            text: what to search for (as :meth:`search` reads it).
            product: only this product.
            status: only this status.
            limit: at most this many (``None``: all of them).

        Raises:
            BadInputError: a malformed filter or limit.
        """
        if limit is not None and (type(limit) is not int or limit < 1):
            raise BadInputError("limit must be a whole number from 1")
        found: list[LicenseSummaryView] = []
        cursor = None
        while limit is None or len(found) < limit:
            wanted = PAGE_MAX if limit is None else min(PAGE_MAX, limit - len(found))
            page = self.search(
                text=text, product=product, status=status, cursor=cursor, limit=wanted
            )
            found += page.items
            if (cursor := page.next_cursor) is None:
                break
        now = now_from(self._clock)
        if len(found) > _READ_ONE_BY_ONE:  # one read of every license beats many look-ups
            records = {r.license_id: r for r in self.ledger.licenses()}
            return [self.view(records[s.license_id], now) for s in found]
        return [self.view(self.ledger.get(s.license_id), now) for s in found]

    def update(
        self,
        license_id: str,
        *,
        customer: str | Keep | None = KEEP,
        ip: str | Keep | None = KEEP,
        expires: _dt.date | Keep | None = KEEP,
        days: int | None = None,
        features: Iterable[str] | None = None,
        limits: Mapping[str, int] | None = None,
        lease_days: int | Keep | None = KEEP,
    ) -> LicenseView:
        """Change a license's terms; arguments left out (``KEEP``) stay as they are.

        Args:
            license_id: the license.
            customer: new customer text (``None`` clears it).
            ip: new assigned IP (``None`` clears it).
            expires: new last day (``None``: no expiry); or
            days: valid for this many days from now.
            features: the new set of features.
            limits: the new limits.
            lease_days: this license's lease (0: no lease; ``None``: the provider's default).

        Raises:
            BadInputError: a malformed value.
            LicenseNotFoundError: no such license.
        """
        now = now_from(self._clock)
        edits: dict[str, Any] = {}
        check = _Fields()
        if lease_days is not KEEP:
            edits["lease_days"] = (
                None
                if lease_days is None
                else check.check("lease_days", lambda: terms.check_lease_days(lease_days))
            )
        if customer is not KEEP:
            edits["customer"] = check.check("customer", lambda: terms.check_customer(customer))
        if ip is not KEEP:
            edits["ip"] = None if ip is None else check.check("ip", lambda: canonical_ip(ip))
        if days is not None or expires is not KEEP:
            last = None if expires is KEEP else expires
            edits["expires_at"] = check.check(
                "expires" if days is None else "days", lambda: terms.expiry(days, last, now)
            )
        if features is not None:
            edits["features"] = check.check("features", lambda: terms.check_features(features))
        if limits is not None:
            edits["limits"] = check.check("limits", lambda: terms.check_limits(limits))
        check.done()

        with self.ledger.transaction() as tx:
            record = existing(tx, license_id)
            updated = policy.amend(record, edits, actor=self.actor, now=now)
            if updated is not None:
                store(tx, record, updated, info=self.ledger.info, months=self._months)
        return self.view(updated or record, now)

    def events(self, *, after: str | None = None, limit: int = 100) -> Page[LoggedEvent]:
        """The audit log of every change, in order, from the event after cursor ``after``.

        ``next_cursor`` is the cursor to ask after next time (the last event's,
        or ``after`` itself when nothing new happened).

        Raises:
            BadInputError: a malformed cursor or limit.
        """
        if type(limit) is not int or not 1 <= limit <= PAGE_MAX:
            raise BadInputError(f"limit must be a whole number from 1 to {PAGE_MAX}")
        start = _cursor(after) or 0
        items = self.ledger.events(after=start, limit=limit)
        next_cursor = str(items[-1].cursor) if items else (None if after is None else str(start))
        return Page(items, next_cursor)

    def revocations(self) -> tuple[int, list[RevocationEntry]]:
        """The revocation list's serial and its entries still in force, for display."""
        now = now_from(self._clock)
        serial, entries = self.ledger.revocations()
        return serial, [e for e in entries if e.until > now]
