"""``verifier``: the server admin's side of activation and renewal.

Commands: fingerprint, request, install, status, activate, renew, and
revocations install.

Built on argparse rather than typer: panels ship the verifier package, and it
must not pull a CLI library in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from verifier.cliutil import EXIT_REFUSED, EXIT_USAGE, fail, print_json, run
from verifier.errors import BadInputError
from verifier.fingerprint import fingerprint, probe_components
from verifier.renewal import renewal_code
from verifier.request import request_code
from verifier.store import TokenStore, default_store_path
from verifier.trust import TrustedKeys
from verifier.verify import Status, TokenState, Verifier

_MAX_STDIN = 64 * 1024


def _stdin_or(value: str) -> str:
    return sys.stdin.read(_MAX_STDIN).strip() if value == "-" else value


def _verifier(args: argparse.Namespace) -> Verifier:
    return Verifier(
        args.product,
        TrustedKeys.from_file(args.trusted_keys),
        machine_id=args.machine_id,
        store=_store(args),
    )


def _print_code(text: str, args: argparse.Namespace) -> None:
    """Print a code (or token) for the air gap, with its QR code when asked."""
    print(text)
    if args.qr or args.qr_png:
        from verifier.qr import qr_png, qr_terminal

        if args.qr:
            print(qr_terminal(text), end="")
        if args.qr_png:
            qr_png(text, args.qr_png)
            print(f"QR code written to {args.qr_png}", file=sys.stderr)


def _describe(status: Status) -> str:
    lic = status.license
    if lic is None:
        reason = status.error.message if status.error else "no activation token stored"
        return f"{status.state}: {reason}"
    line = (
        f"{status.state}: license {lic.license_id} for {lic.product}, features "
        f"{', '.join(sorted(lic.features)) or '-'}, expires {lic.expires_at.isoformat()} "
        f"({status.days_left} days left)"
    )
    if status.state == TokenState.GRACE:
        line += " — renew now"
    return line


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
    _print_code(request_code(args.product, _stdin_or(args.key), machine_id=args.machine_id), args)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    token = _stdin_or(args.token).strip()
    verifier = _verifier(args)
    lic = verifier.verify(token)  # refuse before storing anything
    store = _store(args)
    store.save(token)
    expires = lic.expires_at.date().isoformat()
    print(f"installed license {lic.license_id} for {lic.product} (valid until {expires})")
    print(f"token stored in {store.path}")
    for note in verifier.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    verifier = _verifier(args)
    status = verifier.status(_store(args).load())
    if args.json:
        print_json(status.to_dict())
    else:
        print(_describe(status))
        for note in status.notes:
            print(f"note: {note}")
    return 0 if status.valid else EXIT_REFUSED


def cmd_renew(args: argparse.Namespace) -> int:
    verifier = _verifier(args)
    store = _store(args)
    held = store.load()
    if held is None:
        raise BadInputError(f"no activation token in {store.path} to renew — activate first")
    if args.offline:
        _print_code(renewal_code(held, product=args.product, machine_id=args.machine_id), args)
        print(
            "give this renewal code to your provider, then run 'verifier install' "
            "with the token you get back",
            file=sys.stderr,
        )
        return 0
    status = verifier.status(held)
    lic = status.license
    if status.state == TokenState.VALID and lic is not None and not args.force:
        print(
            f"not due: the lease runs until {lic.expires_at.isoformat()}; "
            f"renewal starts {lic.renew_at_time.isoformat()}"
        )
        return 0
    if status.state == TokenState.CLOCK_ROLLBACK and status.error is not None:
        raise status.error
    from verifier.client import renew_online

    lic = renew_online(args.server, verifier, store)
    print(f"renewed: license {lic.license_id} for {lic.product} until {lic.expires_at.isoformat()}")
    return 0


def cmd_revocations_install(args: argparse.Namespace) -> int:
    text = sys.stdin.read(4 * 1024 * 1024 + 1) if args.file == "-" else _read_list(args.file)
    verifier = _verifier(args)
    lst = verifier.apply_revocations(text)
    print(
        f"revocation list serial {lst.serial} in force ({len(lst)} entries, "
        f"fresh until {lst.expires_at.isoformat()})"
    )
    status = verifier.status(_store(args).load())
    if status.state in (TokenState.SUPERSEDED, TokenState.REVOKED):
        print(_describe(status))
    return 0


def _read_list(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(4 * 1024 * 1024 + 1).decode("ascii", errors="replace")
    except OSError as err:
        raise BadInputError(f"cannot read {path}: {err.strerror}") from err


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
    _qr_options(req)
    req.set_defaults(run=cmd_request)

    revocations = commands.add_parser(
        "revocations", help="Apply the provider's signed revocation list."
    )
    rev_commands = revocations.add_subparsers(dest="action", required=True, metavar="ACTION")
    rev_install = rev_commands.add_parser(
        "install", help="Check a revocation list and apply it (a lower serial is refused)."
    )
    rev_install.add_argument("file", help="The list (from 'issuer revocations export'), or -.")
    rev_install.add_argument("--machine-id", help="Stable id replacing hardware identifiers.")

    for name, help_text, handler in (
        ("install", "Verify an activation token and store it.", cmd_install),
        ("status", "Check the stored token offline (exit 0 when it may run).", cmd_status),
        ("activate", "Activate online: automatically by IP, or manually with --key.", cmd_activate),
        ("renew", "Renew the lease: online with --server, or print a renewal code.", cmd_renew),
        ("revocations install", "", cmd_revocations_install),
    ):
        sub = rev_install if name == "revocations install" else command(name, help_text)
        if name == "renew":
            how = sub.add_mutually_exclusive_group(required=True)
            how.add_argument("--server", help="License server URL (online renewal).")
            how.add_argument(
                "--offline", action="store_true", help="Print a renewal code for the provider."
            )
            sub.add_argument(
                "--force", action="store_true", help="Renew even before the grace window."
            )
            _qr_options(sub)
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


def _qr_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--qr", action="store_true", help="Also print the code as a QR code.")
    sub.add_argument("--qr-png", type=Path, metavar="FILE", help="Write the QR code as PNG.")


def main() -> None:
    """Console-script entry point."""

    def invoke() -> None:
        args = build_parser().parse_args()
        code = args.run(args)
        if code:
            raise SystemExit(code)

    run("verifier", invoke)
