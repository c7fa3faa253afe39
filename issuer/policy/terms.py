"""What a license may say: names, expiry, limits, features, customer, lease and product.

Input checks shared by every door (CLI, console, admin API, Python API), and
the constants the HTTP schemas are built from, so a form and the library
refuse the same values. Pure functions: values in, values or refusals out.

Example:
    >>> check_features(["b", "a", "b"])
    ('a', 'b')
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections.abc import Iterable, Mapping, Set

from issuer.errors import ExpiryOutOfRangeError, UnknownProductError
from verifier.errors import BadInputError
from verifier.text import escaped, hidden_characters

__all__ = [
    "MAX_DAYS",
    "MAX_ITEMS",
    "MAX_LEASE_DAYS",
    "MAX_LIMIT",
    "NAME_PATTERN",
    "check_customer",
    "check_features",
    "check_lease_days",
    "check_limits",
    "check_name",
    "check_product",
    "expiry",
]

#: Products, features and limit names: 1-64 letters, digits, '.', '_' or '-',
#: starting with a letter or digit.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
MAX_DAYS = 36500  # a license lasts at most a hundred years
MAX_ITEMS = 64  # features or limits on one license
MAX_LIMIT = 2**53 - 1  # exact in every JSON reader
MAX_LEASE_DAYS = 3650


def check_name(kind: str, value: str) -> str:
    """Return ``value``, a product, feature or limit name of the allowed shape.

    Raises:
        BadInputError: not 1-64 letters, digits, '.', '_' or '-' starting with one of the first two.
    """
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise BadInputError(
            f"{kind} {value!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def expiry(days: int | None, expires: _dt.date | None, now: _dt.datetime) -> _dt.datetime | None:
    """The end of a license given in days from now or as a last day; neither: no end.

    Raises:
        BadInputError: both given, or not a whole number of days / not a date.
        ExpiryOutOfRangeError: the last day is past, or more than :data:`MAX_DAYS` away.
    """
    if days is not None and expires is not None:
        raise BadInputError("give days or expires, not both", inputs=("days", "expires"))
    if days is not None:
        if type(days) is not int or not 1 <= days <= MAX_DAYS:
            raise BadInputError(f"days must be a whole number from 1 to {MAX_DAYS}")
        return now + _dt.timedelta(days=days)
    if expires is None:
        return None
    if not isinstance(expires, _dt.date) or isinstance(expires, _dt.datetime):
        raise BadInputError("expires must be a date (YYYY-MM-DD)")
    # "Expires 2027-01-31" means usable through that day.
    start = _dt.datetime.combine(expires, _dt.time(), _dt.UTC)
    if start - now >= _dt.timedelta(days=MAX_DAYS):
        raise ExpiryOutOfRangeError(
            f"expiry date {expires.isoformat()} is more than {MAX_DAYS} days away"
        )
    expires_at = start + _dt.timedelta(days=1)
    if expires_at <= now:
        raise ExpiryOutOfRangeError(f"expiry date {expires.isoformat()} is in the past")
    return expires_at


def check_limits(limits: Mapping[str, int] | None) -> dict[str, int]:
    """Return a license's limits: at most :data:`MAX_ITEMS` names, each a whole number.

    Raises:
        BadInputError: too many, a bad name, or a value out of range.
    """
    items = dict(limits or {})
    if len(items) > MAX_ITEMS:
        raise BadInputError(f"at most {MAX_ITEMS} limits")
    for name, value in items.items():
        check_name("limit", name)
        if type(value) is not int or not 0 <= value <= MAX_LIMIT:
            raise BadInputError(f"limit {name} must be a whole number from 0 to {MAX_LIMIT}")
    return items


def check_features(features: Iterable[str]) -> tuple[str, ...]:
    """Return a license's features, sorted and without repeats.

    Raises:
        BadInputError: more than :data:`MAX_ITEMS`, or a bad name.
    """
    wanted = list(features)
    if len(wanted) > MAX_ITEMS:
        raise BadInputError(f"at most {MAX_ITEMS} features")
    return tuple(sorted({check_name("feature", f) for f in wanted}))


def check_customer(customer: str | None) -> str | None:
    """Return the customer text, stripped (``None`` when empty).

    Raises:
        BadInputError: not text, longer than 256 characters, or with hidden characters.
    """
    if customer is None:
        return None
    if not isinstance(customer, str) or len(customer) > 256:
        raise BadInputError("customer must be text of at most 256 characters")
    # It is printed on the provider's terminal and pages: nothing in it may
    # drive the terminal, reorder the text around it or hide part of it.
    hidden = hidden_characters(customer)
    if hidden:
        raise BadInputError(
            "customer must not contain control, bidi or other invisible formatting "
            f"characters (found {escaped(hidden[0])})"
        )
    return customer.strip() or None


def check_lease_days(value: object) -> int:
    """Return a valid lease length in days (0 means no lease).

    Raises:
        BadInputError: not a whole number from 0 to 3650.
    """
    if type(value) is not int or not 0 <= value <= MAX_LEASE_DAYS:
        raise BadInputError(
            f"lease days must be a whole number from 0 (no lease) to {MAX_LEASE_DAYS}"
        )
    return value


def check_product(product: str, known: Set[str], *, new_product: bool = False) -> None:
    """Refuse a product name that is most likely a typo of one the ledger knows.

    A name that differs from a known one only in case is always refused (the
    two could never be told apart by a customer, yet tokens of one do not
    activate the other). Any other unknown name needs ``new_product``, except
    the ledger's very first one.

    Raises:
        UnknownProductError: a case variant, or a new name without ``new_product``.
    """
    if product in known:
        return
    for name in sorted(known):
        if name.casefold() == product.casefold():
            twin = (
                f"product {product!r} differs only in case from {name!r}, which this ledger "
                f"already has: use {name!r}"
            )
            raise UnknownProductError(twin, fields={"product": twin})
    if not known or new_product:
        return
    close = difflib.get_close_matches(product, sorted(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    names = sorted(known)
    has = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    unknown = (
        f"product {product!r} is new to this ledger (it has {has}): "
        f"{hint}check the spelling, or add it as a new product (new_product)"
    )
    raise UnknownProductError(unknown, inputs=("new_product",), fields={"product": unknown})
