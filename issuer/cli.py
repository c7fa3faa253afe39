"""``issuer``: placeholder until the issuer lands."""
