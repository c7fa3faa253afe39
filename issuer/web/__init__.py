"""The provider console and the admin REST API (``issuer console``).

Web pages for the provider's staff and a JSON API for billing systems, over
the same :class:`~issuer.Issuer` façade as the CLI: routes translate HTTP to
façade calls and back, and never touch the ledger.

Example:
    $ issuer console --port 8471
"""
