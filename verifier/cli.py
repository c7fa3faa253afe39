"""``verifier``: the server admin's side of activation (fingerprint, request, install, status).

Built on argparse rather than typer: panels ship the verifier package, and it
must not pull a CLI library in. Every option naming the product, the trusted
keys, the token store or the machine id also reads an environment variable
(``LICET_PRODUCT``, ``LICET_TRUSTED_KEYS``, ``LICET_STORE``,
``LICET_MACHINE_ID``), so a panel's service sets them once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from verifier import __version__
from verifier.cliutil import EXIT_REFUSED, EXIT_USAGE, PathOption, fail, print_json, run
from verifier.clock import format_utc
from verifier.errors import BadInputError, LicenseError
from verifier.fingerprint import fingerprint, probe_components
from verifier.request import REQUEST_PREFIX, request_code
from verifier.store import TokenStore, default_store_path
from verifier.trust import TrustedKeys
from verifier.verify import Verifier

_MAX_STDIN = 64 * 1024
# The license server listens on 8470 by default and a provider often runs it
# on the same machine as a test panel: the callback must not collide with it.
DEFAULT_CALLBACK_PORT = 8472
_PATHS: dict[str, PathOption] = {
    "trusted-keys-missing": ("--trusted-keys", "LICET_TRUSTED_KEYS", "(none)"),
}


def _stdin_or(value: str) -> str:
    return sys.stdin.read(_MAX_STDIN).strip() if value == "-" else value


def _verifier(args: argparse.Namespace) -> Verifier:
    return Verifier(
        args.product, TrustedKeys.from_file(args.trusted_keys), machine_id=args.machine_id
    )


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(args.store or default_store_path(args.product))


def _token_argument(value: str) -> str:
    """The token given to ``install``, refusing the two things people paste instead."""
    token = _stdin_or(value).strip()
    if token.startswith(REQUEST_PREFIX[:5]):
        raise BadInputError(
            "this is a request code (what 'verifier request' prints for the provider); "
            "install takes the activation token the provider sends back, which starts with 'ey'"
        )
    if token.count(".") != 2 and Path(token).exists():
        raise BadInputError(
            f"{token!r} is a file name; install takes the token itself: "
            f"'verifier install - < {token}'"
        )
    return token


def _installed(lic: Any, store: TokenStore, how: str) -> dict[str, Any]:
    return {
        "license_id": lic.license_id,
        "product": lic.product,
        "expires_at": format_utc(lic.expires_at),
        "store": str(store.path.resolve()),
        "how": how,
    }


def cmd_fingerprint(args: argparse.Namespace) -> int:
    components = probe_components(args.machine_id)
    parts = list(fingerprint(args.product, args.machine_id)) if args.product else None
    if args.json:
        print_json(
            {
                "components": [{"kind": kind, "found": found} for kind, found in components],
                "product": args.product,
                "fingerprint": parts,
            }
        )
        return 0
    for kind, found in components:
        print(f"{kind:<12} {found}")
    if parts is not None:
        print(f"fingerprint for {args.product}:")
        for part in parts:
            print(f"  {part}")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    code = request_code(args.product, _stdin_or(args.key), machine_id=args.machine_id)
    if args.json:
        print_json({"request_code": code, "product": args.product})
    else:
        print(code)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    token = _token_argument(args.token)
    lic = _verifier(args).verify(token)  # refuse before storing anything
    store = _store(args)
    store.save(token)
    if args.json:
        print_json(_installed(lic, store, "installed"))
        return 0
    until = format_utc(lic.expires_at)
    print(f"installed license {lic.license_id} for {lic.product} (valid until {until})")
    print(f"token stored in {store.path.resolve()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        status = _verifier(args).status(_store(args).load())
    except LicenseError as err:
        if not args.json:
            raise
        # The check itself could not run (trusted keys, token store): still JSON.
        print_json({"state": "error", "code": err.code, "reason": err.message})
        return EXIT_REFUSED
    if args.json:
        data = status.to_dict()
        if status.state == "missing":
            data.setdefault("code", "token-missing")
            data.setdefault("reason", f"no activation token in {_store(args).path.resolve()}")
        print_json(data)
    elif status.license is not None:
        lic = status.license
        print(
            f"valid: license {lic.license_id} for {lic.product}, features "
            f"{', '.join(sorted(lic.features)) or '-'}, expires {format_utc(lic.expires_at)}"
        )
    else:
        reason = (
            status.error.message
            if status.error
            else f"no activation token in {_store(args).path.resolve()}"
        )
        print(f"{status.state}: {reason}")
    return 0 if status.valid else EXIT_REFUSED


def cmd_activate(args: argparse.Namespace) -> int:
    from verifier.client import activate_automatic, activate_online

    verifier = _verifier(args)
    if args.key is not None:
        token = activate_online(
            args.server, args.product, _stdin_or(args.key), machine_id=args.machine_id
        )
    else:
        token = activate_automatic(
            args.server,
            args.product,
            callback_port=args.callback_port,
            machine_id=args.machine_id,
            listen=args.listen,
        )
    lic = verifier.verify(token)  # never store what does not verify here
    store = _store(args)
    store.save(token)
    how = "manually" if args.key is not None else "automatically"
    if args.json:
        print_json(_installed(lic, store, f"activated {how}"))
        return 0
    until = format_utc(lic.expires_at)
    print(f"activated {how}: license {lic.license_id} for {lic.product} until {until}")
    print(f"token stored in {store.path.resolve()}")
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """argparse with bad usage reported like every other failure: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message, EXIT_USAGE)


def _env_option(
    parser: argparse.ArgumentParser,
    flag: str,
    envvar: str,
    help_text: str,
    *,
    required: bool,
    type_: Any = str,
) -> None:
    """An option that falls back to an environment variable (required only when neither is set)."""
    default = os.environ.get(envvar) or None
    parser.add_argument(
        flag,
        type=type_,
        default=None if default is None else type_(default),
        required=required and default is None,
        help=f"{help_text} (env {envvar}"
        + ("; required" if required else "; default: none")
        + ").",
    )


def build_parser(prog: str = "verifier") -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(prog=prog, description="Activate and check this server's license.")
    parser.add_argument("--version", action="version", version=f"{prog} (licet) {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--version", action="version", version=f"{prog} (licet) {__version__}")
        _env_option(
            sub,
            "--machine-id",
            "LICET_MACHINE_ID",
            "Stable id replacing hardware identifiers (containers, cloned VMs)",
            required=False,
        )
        sub.add_argument("--json", action="store_true", help="Print JSON (default: text).")
        return sub

    fp = command("fingerprint", "Show what identifies this server.")
    _env_option(
        fp, "--product", "LICET_PRODUCT", "Also show the product's fingerprint", required=False
    )
    fp.set_defaults(run=cmd_fingerprint)

    req = command("request", "Print an activation request code for an air-gapped activation.")
    _env_option(req, "--product", "LICET_PRODUCT", "The product", required=True)
    req.add_argument(
        "--key", required=True, help="The activation key, or - to read it from stdin (required)."
    )
    req.set_defaults(run=cmd_request)

    for name, help_text, handler in (
        ("install", "Verify an activation token and store it.", cmd_install),
        ("status", "Check the stored token offline (exit 0 when valid).", cmd_status),
        ("activate", "Activate online: automatically by IP, or manually with --key.", cmd_activate),
    ):
        sub = command(name, help_text)
        if name == "install":
            sub.add_argument("token", help="The token, or - to read it from stdin.")
        if name == "activate":
            sub.add_argument("--server", required=True, help="License server URL (required).")
            sub.add_argument(
                "--key",
                help="Activation key, for manual activation (default: automatic by IP).",
            )
            sub.add_argument(
                "--callback-port",
                type=_port,
                default=DEFAULT_CALLBACK_PORT,
                help="Port for the license server's callback (default %(default)s).",
            )
            sub.add_argument(
                "--listen",
                default="0.0.0.0",  # noqa: S104 - the license server calls back from outside
                help="Address the callback responder listens on (default %(default)s).",
            )
        _env_option(sub, "--product", "LICET_PRODUCT", "The product", required=True)
        _env_option(
            sub,
            "--trusted-keys",
            "LICET_TRUSTED_KEYS",
            "JWKS file from 'keytool export'",
            required=True,
            type_=Path,
        )
        _env_option(
            sub,
            "--store",
            "LICET_STORE",
            "Token file (when unset: ./licet-PRODUCT.token)",
            required=False,
            type_=Path,
        )
        sub.set_defaults(run=handler)
    return parser


def main(argv: list[str] | None = None, prog: str = "verifier") -> None:
    """Console-script entry point (``argv`` and ``prog`` for ``licet verifier``)."""

    def invoke() -> None:
        args = build_parser(prog).parse_args(argv)
        code = args.run(args)
        if code:
            raise SystemExit(code)

    run(prog, invoke, argv=argv, paths=_PATHS)
