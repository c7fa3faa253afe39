"""``verifier``: the server admin's side of activation (fingerprint, request, install, status).

Built on argparse rather than typer: panels ship the verifier package, and it
must not pull a CLI library in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from verifier.cliutil import EXIT_REFUSED, EXIT_USAGE, fail, print_json, run
from verifier.fingerprint import fingerprint, probe_components
from verifier.request import request_code
from verifier.store import TokenStore, default_store_path
from verifier.trust import TrustedKeys
from verifier.verify import Verifier

_MAX_STDIN = 64 * 1024


def _stdin_or(value: str) -> str:
    return sys.stdin.read(_MAX_STDIN).strip() if value == "-" else value


def _verifier(args: argparse.Namespace) -> Verifier:
    return Verifier(
        args.product, TrustedKeys.from_file(args.trusted_keys), machine_id=args.machine_id
    )


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(args.store or default_store_path(args.product))


def cmd_fingerprint(args: argparse.Namespace) -> int:
    for kind, found in probe_components(args.machine_id):
        print(f"{kind:<12} {found}")
    if args.product:
        print(f"fingerprint for {args.product}:")
        for part in fingerprint(args.product, args.machine_id):
            print(f"  {part}")
    return 0


def cmd_request(args: argparse.Namespace) -> int:
    print(request_code(args.product, _stdin_or(args.key), machine_id=args.machine_id))
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    token = _stdin_or(args.token).strip()
    lic = _verifier(args).verify(token)  # refuse before storing anything
    store = _store(args)
    store.save(token)
    expires = lic.expires_at.date().isoformat()
    print(f"installed license {lic.license_id} for {lic.product} (valid until {expires})")
    print(f"token stored in {store.path}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _verifier(args).status(_store(args).load())
    if args.json:
        print_json(status.to_dict())
    elif status.license is not None:
        lic = status.license
        print(
            f"valid: license {lic.license_id} for {lic.product}, features "
            f"{', '.join(sorted(lic.features)) or '-'}, expires {lic.expires_at.isoformat()}"
        )
    else:
        reason = status.error.message if status.error else "no activation token stored"
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
    until = lic.expires_at.date().isoformat()
    print(f"activated {how}: license {lic.license_id} for {lic.product} until {until}")
    print(f"token stored in {store.path}")
    return 0


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """argparse with bad usage reported like every other failure: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message, EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = _Parser(prog="verifier", description="Activate and check this server's license.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--machine-id",
            help="Stable id replacing hardware identifiers (containers, cloned VMs).",
        )
        return sub

    fp = command("fingerprint", "Show what identifies this server.")
    fp.add_argument("--product")
    fp.set_defaults(run=cmd_fingerprint)

    req = command("request", "Print an activation request code for an air-gapped activation.")
    req.add_argument("--product", required=True)
    req.add_argument(
        "--key", required=True, help="The activation key (or - to read it from stdin)."
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
            sub.add_argument("--server", required=True, help="License server URL.")
            sub.add_argument("--key", help="Activation key (manual); without it, automatic by IP.")
            sub.add_argument(
                "--callback-port",
                type=_port,
                default=8470,
                help="Port for the license server's callback.",
            )
            sub.add_argument(
                "--listen",
                default="0.0.0.0",  # noqa: S104 - the license server calls back from outside
                help="Address the callback responder listens on.",
            )
        sub.add_argument("--product", required=True)
        sub.add_argument(
            "--trusted-keys", required=True, type=Path, help="JWKS from 'keytool export'."
        )
        sub.add_argument("--store", type=Path, help="Token file (default ./licet-PRODUCT.token).")
        if name == "status":
            sub.add_argument("--json", action="store_true", help="Print JSON.")
        sub.set_defaults(run=handler)
    return parser


def main() -> None:
    """Console-script entry point."""

    def invoke() -> None:
        args = build_parser().parse_args()
        code = args.run(args)
        if code:
            raise SystemExit(code)

    run("verifier", invoke)
