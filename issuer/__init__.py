"""licet's provider side: licenses, activation keys, the ledger and the license server."""
