"""The capabilities: each reads through the ledger, decides through the policy, and writes back.

:mod:`~issuer.licensing.minting` turns keys into tokens (the activation-key
secret, key hashes); :mod:`~issuer.licensing.accounts` holds console users,
API tokens, sessions and log-in limits; :mod:`~issuer.licensing.revocation_list`
signs the revocation list and keeps the last one signed. Nothing here imports
the façade or the web layer.
"""
