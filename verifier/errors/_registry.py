"""The root of the exception tree and the registry of codes every subclass joins.

A class registers its ``code`` when it is created: a class without a code of
its own, or with a code another class holds, is an error at import. The
registry is whole once :mod:`verifier.errors` is imported, because that
package imports every family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Self

__all__ = ["LicenseError", "error_class", "error_classes", "error_for_code"]

_CODE = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_REGISTRY: dict[str, type[LicenseError]] = {}
# The families are one public module: their classes show (repr, pickle) as verifier.errors.X.
_PACKAGE = "verifier.errors"


class LicenseError(Exception):
    """Root of every licet refusal.

    Attributes:
        code: stable machine-readable identifier (kebab-case), part of the API;
            unique across every licet package.
        message: one line for humans.
    """

    code: ClassVar[str] = "license-error"
    default_message: ClassVar[str] = "license error"
    #: HTTP status the license server answers with for this refusal.
    http_status: ClassVar[int] = 400
    #: Whether the very same request, sent again later, may succeed.
    retry: ClassVar[bool] = False
    #: Extension members this refusal carries in a problem document: name → JSON Schema.
    members: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)

    #: Inputs the message names, spelt as the Python and HTTP APIs spell them
    #: (``new_product``); a command line or a form says them its own way (:meth:`worded`).
    inputs: tuple[str, ...] = ()
    #: What is wrong with each input at fault, when the refusal knows (a form marks each one).
    fields: Mapping[str, str] = MappingProxyType({})

    def __init__(
        self,
        message: str | None = None,
        *,
        inputs: tuple[str, ...] = (),
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self.message = " ".join((message or self.default_message).split())
        if inputs:
            self.inputs = inputs
        if fields:
            self.fields = dict(fields)
        super().__init__(self.message)

    def worded(self, say: Callable[[str], str], text: str | None = None) -> str:
        """The message (or ``text``) with each input it names said as ``say`` says it.

        Example:
            >>> err = LicenseError("use new_product", inputs=("new_product",))
            >>> err.worded(lambda name: "--new-product")
            'use --new-product'
        """
        message = self.message if text is None else text
        for name in self.inputs:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", say(name), message)
        return message

    def details(self) -> dict[str, Any]:
        """Extra machine-readable fields (JSON types only) carried with the error."""
        return {}

    @classmethod
    def from_problem(cls, message: str, details: dict[str, Any]) -> Self:
        """Rebuild this error from a problem document's ``detail`` and extra members.

        Classes whose :meth:`details` carry data override this to read it back.
        """
        return cls(message)


def _register(cls: type[LicenseError]) -> None:
    if cls.__module__.startswith(_PACKAGE + "."):
        cls.__module__ = _PACKAGE
    code = cls.__dict__.get("code")
    name = f"{cls.__module__}.{cls.__qualname__}"
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise TypeError(f"{name} must define its own kebab-case 'code'")
    holder = _REGISTRY.get(code)
    # The same class created again (its module reloaded) takes its own place back.
    if holder is not None and (holder.__module__, holder.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise TypeError(
            f"error code {code!r} of {name} is already used by "
            f"{holder.__module__}.{holder.__qualname__}"
        )
    _REGISTRY[code] = cls


_register(LicenseError)


def error_classes() -> list[type[LicenseError]]:
    """Every registered error class, ordered by code.

    Whole once :mod:`verifier.errors` is imported; a class defined in another
    module (:class:`verifier.keys.UnsafeKeyError`) joins when its module is imported.
    """
    return [_REGISTRY[code] for code in sorted(_REGISTRY)]


def error_class(code: str) -> type[LicenseError] | None:
    """The error class registered for ``code``, or ``None`` when no imported module defines it."""
    return _REGISTRY.get(code)


def error_for_code(code: str, message: str, details: dict[str, Any] | None = None) -> LicenseError:
    """Rebuild the licet error for a code received from a license server.

    The exact subclass comes back, with the data it carries (for example
    :attr:`AlreadyActivatedError.regenerate_after`). Unknown codes (a newer
    server) come back as a plain :class:`LicenseError` carrying the server's
    code and message, never as an exception of another kind.
    """
    cls = _REGISTRY.get(code)
    if cls is None or cls is LicenseError:
        err = LicenseError(message)
        err.code = code  # type: ignore[misc]  # keeps a newer server's code visible
        return err
    try:
        return cls.from_problem(message, details or {})
    except (TypeError, ValueError):  # data of the wrong shape from the server
        err = LicenseError(message)
        err.code = code  # type: ignore[misc]
        return err
