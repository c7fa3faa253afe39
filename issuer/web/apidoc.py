"""What licet's HTTP APIs promise: problem documents, their pages, the documented refusals.

Every refusal an HTTP API of licet answers is an RFC 9457 problem document
(``application/problem+json``) with the library's stable ``code``. This
module builds, from the error registry of :mod:`verifier.errors`, everything
that documents them, so the documents cannot drift from the errors:

* :func:`problem_body` — the document itself; its ``type`` is
  ``/problems/<code>``, a page the server serves;
* :func:`problem_schema` — the one JSON Schema every refusal follows,
  extension members (``regenerate_after``, ``incident``, ...) included;
* :func:`refusals` — an operation's OpenAPI ``responses`` for the error
  classes it may raise, grouped by status, each listing its codes;
* :data:`ADVICE` — what a client should do about each code, in words;
* :func:`problem_page` / :func:`problems_index` — the HTML pages behind the
  ``type`` URIs: what each code means, what a client should do, whether a
  retry may help;
* :func:`markdown` and :func:`problem_table` — the README's "HTTP API"
  section, from an OpenAPI document.

No web framework is imported here; the servers use it.

Example:
    >>> from verifier.errors import RateLimitedError
    >>> sorted(refusals([RateLimitedError]))
    ['429']
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from verifier.errors import LicenseError, error_class, error_classes
from verifier.text import terminal_safe

__all__ = [
    "ADVICE",
    "INCIDENT_MEMBER",
    "PROBLEM_MEDIA_TYPE",
    "PROBLEMS_PATH",
    "markdown",
    "problem_body",
    "problem_page",
    "problem_schema",
    "problem_table",
    "problem_type",
    "problems_index",
    "refusals",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEMS_PATH = "/problems"
#: Added by the server to every answer for a fault of its own (5xx).
INCIDENT_MEMBER: dict[str, Any] = {
    "type": "string",
    "pattern": "^[0-9a-f]{12}$",
    "description": "names the fault in the provider's log; quote it when asking for help",
}
_SCHEMA_REF = "#/components/schemas/Problem"

# What a client should do, per problem code. The prose lives here, with the
# pages and tables that show it, not on the error classes: panels never read
# it. Every registered code has its entry (a test holds the two together).
_CORRECT_OR_ASK = "Read the detail, correct the request, or ask the provider."
_LEDGER_FAULT = (
    "The provider's ledger cannot be used right now. Retry later with backoff; quote the incident "
    "id to the provider if it persists."
)
_KEYRING_FAULT = (
    "The provider's signing keys cannot be used right now. Retry later; quote the incident id to "
    "the provider."
)
_PRIVATE_KEY_FAULT = (
    "The provider's signing key cannot be used right now. Retry later; quote the incident id to "
    "the provider."
)

ADVICE: dict[str, str] = {
    # the root: any refusal without words of its own
    "license-error": _CORRECT_OR_ASK,
    # input of the wrong shape
    "bad-input": (
        "The request is malformed (a field of the wrong type, length or format, an unknown "
        "member). Fix the request as the detail says; the OpenAPI document gives every field's "
        "format."
    ),
    "invalid-renewal-code": (
        "Make a new renewal code on the panel and send it whole and unchanged; a code of another "
        "version needs a matching license server."
    ),
    "invalid-request-code": (
        "Copy the whole request code again from the panel (it is one line) and send it unchanged; "
        "a code of another version needs a matching panel."
    ),
    "malformed-activation-key": (
        "The activation key has a typo: compare it with the key the provider gave, character by "
        "character."
    ),
    # verification on the panel
    "clock-rollback": _CORRECT_OR_ASK,
    "invalid-revocations": _CORRECT_OR_ASK,
    "invalid-token": _CORRECT_OR_ASK,
    "invalid-trusted-keys": _CORRECT_OR_ASK,
    "revocations-rollback": _CORRECT_OR_ASK,
    "signing-key-revoked": _CORRECT_OR_ASK,
    "token-expired": _CORRECT_OR_ASK,
    "token-not-yet-valid": _CORRECT_OR_ASK,
    "token-store-error": _CORRECT_OR_ASK,
    "token-too-large": _CORRECT_OR_ASK,
    "trusted-keys-missing": _CORRECT_OR_ASK,
    "unsafe-key": _CORRECT_OR_ASK,
    "untrusted-key": _CORRECT_OR_ASK,
    "wrong-server": (
        "The token or renewal belongs to another server's activation. Activate this server with "
        "its own activation key."
    ),
    # activation and renewal outcomes
    "activation-not-found": "The license never had this activation. Activate the server again.",
    "activation-required": _CORRECT_OR_ASK,
    "activation-superseded": (
        "The activation key was regenerated and this server's activation replaced. Activate again "
        "with the current key."
    ),
    "already-activated": (
        "The key is in use on another server. Ask the provider to regenerate the activation key "
        "(possible from regenerate_after), then activate with the new key."
    ),
    "callback-failed": (
        "The license server could not fetch the challenge from the panel at the caller's address "
        "and callback port. Make the port reachable from the license server (firewall, NAT), then "
        "retry; or activate manually."
    ),
    "invalid-activation-key": (
        "The key opens no license. Check it with the provider; repeated wrong keys from one "
        "address are rate limited."
    ),
    "license-expired": "The license has expired. Renew the license with the provider.",
    "license-not-found": "No license has that id. Check the id.",
    "license-revoked": (
        "The provider revoked this license. Contact the provider; retrying does not help."
    ),
    "machine-id-refused": (
        "Activate with the server's own hardware identity (no custom machine id), or ask the "
        "provider to allow custom machine ids for this license."
    ),
    "no-license-for-address": (
        "No license is assigned to this server's address for the product. Activate manually with "
        "an activation key."
    ),
    "regeneration-too-soon": (
        "The key was regenerated less than a month ago. Try again from allowed_from."
    ),
    "wrong-product": (
        "The key or license belongs to another product. Use the key issued for this product."
    ),
    # the exchange and the HTTP layer
    "body-too-large": (
        "Send a smaller body: a panel's requests, sent unchanged, are never this large; an admin "
        "API body stays under the console's limit (64 KiB by default)."
    ),
    "headers-too-large": "Send fewer or shorter headers (cookies, proxies' additions).",
    "http-error": "Read the detail and the HTTP status; correct the request.",
    "method-not-allowed": "Use one of the methods the Allow header lists.",
    "not-found": "Check the URL against the OpenAPI document (/openapi.json).",
    "rate-limited": (
        "Too many attempts from this address (failed activation keys, or requests for the "
        "revocation list). Wait retry_after seconds (also sent as Retry-After) before trying "
        "again."
    ),
    "server-unavailable": (
        "The license server failed or could not be reached. Retry later with backoff; quote the "
        "incident id to the provider if it persists."
    ),
    # the provider's own faults
    "keyring-error": _KEYRING_FAULT,
    "keyring-missing": _KEYRING_FAULT,
    "ledger-busy": _LEDGER_FAULT,
    "ledger-corrupt": _LEDGER_FAULT,
    "ledger-error": _LEDGER_FAULT,
    "ledger-exists": _LEDGER_FAULT,
    "ledger-missing": _LEDGER_FAULT,
    "ledger-unavailable": (
        "The provider's ledger database cannot be reached right now (a restart or a failover). "
        "Wait retry_after seconds (also sent as Retry-After), then retry."
    ),
    "ledger-version": _LEDGER_FAULT,
    "ledger-write-failed": _LEDGER_FAULT,
    "no-active-key": _KEYRING_FAULT,
    "passphrase-error": _PRIVATE_KEY_FAULT,
    "private-key-error": _PRIVATE_KEY_FAULT,
    "secret-missing": _PRIVATE_KEY_FAULT,
    # the console, the admin API and the commands
    "account-exists": _CORRECT_OR_ASK,
    "account-not-found": _CORRECT_OR_ASK,
    "cannot-listen": _CORRECT_OR_ASK,
    "csrf-failed": _CORRECT_OR_ASK,
    "expiry-out-of-range": (
        "Give a last day from today up to 36,500 days ahead, or a number of days instead."
    ),
    "forbidden": "Use a write-scope token for changes; read- and keys-scope tokens may only GET.",
    "output-refused": _CORRECT_OR_ASK,
    "revocations-too-large": (
        "The provider's revocation list has outgrown what panels accept; the panel keeps the list "
        "it has. Quote the incident id to the provider."
    ),
    "unauthorized": (
        "Send a valid API token as Authorization: Bearer <token>; a revoked token stops working "
        "at once, so ask the provider for a new one."
    ),
    "webhook-not-found": (
        "Check the endpoint or delivery id against GET /v1/admin/webhooks and its deliveries; "
        "a removed endpoint's deliveries are gone with it."
    ),
    "webhook-target-refused": (
        "Give an https:// URL of a public host; a receiver on a private network needs "
        "allow_private."
    ),
    "unknown-product": (
        "Check the product's spelling against the provider's products; to add a new product, send "
        'the license again with "new_product": true.'
    ),
}


def problem_type(code: str) -> str:
    """The ``type`` URI of a problem: the page that explains ``code``."""
    return f"{PROBLEMS_PATH}/{code}"


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem document for ``code``."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": code.replace("-", " "),
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of every problem document, with every registered extension member."""
    members: dict[str, Any] = {"incident": INCIDENT_MEMBER}
    for cls in error_classes():
        members.update(cls.members)
    return {
        "title": "Problem",
        "description": (
            "An RFC 9457 problem document. `code` is stable and machine-readable; "
            "`type` is the page explaining it; `detail` is one line for humans."
        ),
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri-reference"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string", "pattern": "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"},
            **members,
        },
        "additionalProperties": False,
    }


def refusals(
    errors: Iterable[type[LicenseError]], statuses: Mapping[type[LicenseError], int] | None = None
) -> dict[str, dict[str, Any]]:
    """OpenAPI ``responses`` for an operation that may raise ``errors``.

    Args:
        errors: the error classes the operation may answer with.
        statuses: the status a class is answered with when it is not its
            ``http_status`` (a bug is answered 500 with ``server-unavailable``).

    Returns:
        status (as a string) → response object whose schema is the shared
        problem schema with ``status`` and ``code`` narrowed to what this
        operation answers.
    """
    grouped: dict[int, list[type[LicenseError]]] = {}
    for cls in errors:
        status = (statuses or {}).get(cls, cls.http_status)
        if cls not in grouped.setdefault(status, []):
            grouped[status].append(cls)
    responses: dict[str, dict[str, Any]] = {}
    for status in sorted(grouped):
        codes = sorted(cls.code for cls in grouped[status])
        schema = {
            "allOf": [
                {"$ref": _SCHEMA_REF},
                {"properties": {"status": {"const": status}, "code": {"enum": codes}}},
            ]
        }
        responses[str(status)] = {
            "description": "Refused: " + ", ".join(f"`{code}`" for code in codes),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
    return responses


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        f"<body>\n{body}</body></html>\n"
    )


def _summary(cls: type[LicenseError]) -> str:
    return (cls.__doc__ or cls.default_message).strip().splitlines()[0]


def problem_page(cls: type[LicenseError]) -> str:
    """The HTML page for one problem ``code``: what it means, what to do, whether to retry."""
    members = "".join(
        f"<li><code>{html.escape(name)}</code>: "
        f"{html.escape(str(schema.get('description', '')))}</li>\n"
        for name, schema in cls.members.items()
    )
    body = (
        f"<h1><code>{html.escape(cls.code)}</code></h1>\n"
        f"<p>{html.escape(_summary(cls))}</p>\n"
        f"<p><strong>What to do:</strong> {html.escape(ADVICE[cls.code])}</p>\n"
        f"<p><strong>Retry:</strong> {_retry_words(cls)}</p>\n"
        + (f"<p>Extension members:</p>\n<ul>\n{members}</ul>\n" if members else "")
        + f'<p><a href="{PROBLEMS_PATH}">Every problem code</a></p>\n'
    )
    return _page(f"licet problem: {cls.code}", body)


def problems_index() -> str:
    """The HTML page listing every problem code with its advice."""
    rows = "".join(
        f'<tr><td><a href="{problem_type(cls.code)}"><code>{html.escape(cls.code)}</code></a>'
        f"</td><td>{html.escape(_summary(cls))}</td><td>{_retry_words(cls)}</td></tr>\n"
        for cls in error_classes()
    )
    body = (
        "<h1>licet problem codes</h1>\n"
        "<table>\n<tr><th>code</th><th>meaning</th><th>retry</th></tr>\n"
        f"{rows}</table>\n"
    )
    return _page("licet problem codes", body)


def _retry_words(cls: type[LicenseError]) -> str:
    return "yes, later" if cls.retry else "no, not the same request"


def markdown(openapi: Mapping[str, Any]) -> str:
    """The README's "HTTP API" section body for an OpenAPI document.

    One line per operation (method, path, summary), then its request body's
    fields with their constraints, then each answer's status and codes.
    Characters that would hide text are written as escapes.
    """
    lines: list[str] = []
    schemas = openapi.get("components", {}).get("schemas", {})
    for path, item in openapi.get("paths", {}).items():
        for method, operation in item.items():
            lines.append(f"#### `{method.upper()} {path}`")
            lines.append("")
            lines.append(str(operation.get("summary", "")).strip())
            lines.append("")
            for parameter in operation.get("parameters", ()):
                need = "required" if parameter.get("required") else "optional"
                rules = _constraints(parameter.get("schema", {}))
                lines.append(
                    f"- `{parameter['name']}` ({parameter['in']}, {need}) {rules}".rstrip()
                )
            if operation.get("parameters"):
                lines.append("")
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                schema = _resolve(content.get("schema", {}), schemas)
                lines.append(f"Request `{media}`:")
                lines.append("")
                lines.extend(_fields(schema, schemas))
                lines.append("")
            lines.append("| status | media type | codes / body |")
            lines.append("|---|---|---|")
            for status, answer in operation.get("responses", {}).items():
                for media, content in answer.get("content", {"-": {}}).items():
                    lines.append(f"| {status} | `{media}` | {_answer(content, schemas)} |")
            lines.append("")
    # A pattern may name invisible characters as themselves: show them as escapes.
    return "\n".join(terminal_safe(line) for line in lines).rstrip() + "\n"


def problem_table(openapi: Mapping[str, Any]) -> str:
    """The README's table of every problem code an OpenAPI document's operations answer."""
    codes: set[str] = set()
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            for answer in operation.get("responses", {}).values():
                for content in answer.get("content", {}).values():
                    for part in content.get("schema", {}).get("allOf", ()):
                        codes.update(part.get("properties", {}).get("code", {}).get("enum", ()))
    lines = ["| code | status | meaning | what to do | retry |", "|---|---|---|---|---|"]
    for code in sorted(codes):
        cls = error_class(code)
        if cls is None:
            raise ValueError(f"the document names the unregistered problem code {code!r}")
        row = (f"`{code}`", str(cls.http_status), _summary(cls), ADVICE[code], _retry_words(cls))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _resolve(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return dict(schemas.get(ref.rsplit("/", 1)[-1], {}))
    return schema


def _fields(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> list[str]:
    required = set(schema.get("required", ()))
    lines = []
    for name, field in schema.get("properties", {}).items():
        rules = _constraints(_resolve(field, schemas))
        need = "required" if name in required else "optional"
        lines.append(f"- `{name}` ({need}) {rules}".rstrip())
    together = schema.get("not", {}).get("required")
    if together:
        names = ", ".join(f"`{name}`" for name in together)
        lines.append(f"- at most one of {names} (`null` counts as not given)")
    if schema.get("additionalProperties") is False:
        lines.append("- any other member is refused (`bad-input`)")
    return lines


def _constraints(field: Mapping[str, Any]) -> str:
    kinds = field.get("anyOf")
    if isinstance(kinds, list) and "type" not in field:
        # `X | None`: null first, then each other alternative with its own rules.
        null = {"type": "null"} in kinds
        shown = " or ".join(_rules(kind) for kind in kinds if kind != {"type": "null"})
        return ": " + ("`null`, or " if null else "") + shown
    rules = _rules(field)
    return ": " + rules if rules else ""


def _rules(field: Mapping[str, Any]) -> str:
    shown = []
    for key in (
        "type",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "maxProperties",
        "uniqueItems",
        "default",
    ):
        if key in field:
            shown.append(f"{key} `{field[key]}`")
    formats = [kind.get("format") for kind in field.get("anyOf", ()) if "format" in kind]
    if formats:
        shown.append("format " + " or ".join(f"`{name}`" for name in formats))
    items = field.get("items")
    if isinstance(items, Mapping) and "pattern" in items:
        shown.append(f"items pattern `{items['pattern']}`")
    for pattern, value in field.get("patternProperties", {}).items():
        shown.append(f"names match `{pattern}`, values {_rules(value)}")
    for rule in field.get("allOf", ()):
        contains = rule.get("contains", {})
        if "maxContains" in rule and "pattern" in contains:
            shown.append(f"at most {rule['maxContains']} matching `{contains['pattern']}`")
    return ", ".join(shown)


def _answer(content: Mapping[str, Any], schemas: Mapping[str, Any]) -> str:
    schema = content.get("schema", {})
    for part in schema.get("allOf", ()):
        codes = part.get("properties", {}).get("code", {}).get("enum")
        if codes:
            return ", ".join(f"`{code}`" for code in codes)
    resolved = _resolve(schema, schemas)
    if resolved.get("type") == "object" and "properties" in resolved:
        return "{" + ", ".join(f"`{name}`" for name in resolved["properties"]) + "}"
    return str(resolved.get("type", "")) or "-"
