"""Schemathesis hooks for the contract run: the checks licet adds to `--checks all`.

Loaded by `st run` through SCHEMATHESIS_HOOKS (see test_openapi_contract.py).
"""

from __future__ import annotations

import json

import schemathesis

# Refusals of a body's *content* that its schema cannot express: a request code
# the schema lets through may still fail its checksum or carry a mistyped key;
# a license may name a product new to the ledger, or a last day already past.
CONTENT_REFUSALS = {
    "invalid-request-code",
    "invalid-renewal-code",
    "malformed-activation-key",
    "unknown-product",
    "expiry-out-of-range",
    "webhook-target-refused",
}


@schemathesis.check
def schema_valid_bodies_are_never_refused_for_their_shape(ctx, response, case):  # type: ignore[no-untyped-def]
    """A body valid by the schema may be refused for what it says, never with `bad-input`."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    code = json.loads(response.content).get("code")
    if code not in CONTENT_REFUSALS:
        raise AssertionError(f"a schema-valid request was refused for its shape: {response.text}")
    return None


@schemathesis.check
def refusals_are_problem_documents(ctx, response, case):  # type: ignore[no-untyped-def]
    """Every 4xx/5xx is application/problem+json whose `type` is its code's page."""
    if response.status_code < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), response.headers
    if case.method.upper() == "HEAD":
        return None
    body = json.loads(response.content)
    assert body["status"] == response.status_code, body
    assert body["type"] == f"/problems/{body['code']}", body
    if response.status_code == 405:
        assert response.headers.get("allow"), "405 without Allow"
    return None
