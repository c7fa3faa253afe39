"""``verifier``: the server admin's side of activation and renewal.

Commands: fingerprint, request, install, status, activate, renew, and
revocations install.

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
from verifier.cliutil import (
    EXIT_REFUSED,
    PathOption,
    UsageError,
    complain,
    located,
    print_json,
    refusal_document,
    run,
)
from verifier.encoding import unfold
from verifier.errors import BadInputError, LicenseError
from verifier.fingerprint import fingerprint, probe_components
from verifier.renewal import renewal_code
from verifier.request import code_kind, request_code
from verifier.store import TokenStore, default_store_path
from verifier.timefmt import format_utc, last_day
from verifier.trust import TrustedKeys
from verifier.verify import Status, TokenState, Verifier

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
        args.product,
        TrustedKeys.from_file(args.trusted_keys),
        machine_id=args.machine_id,
        store=_store(args),
    )


def _print_code(text: str, args: argparse.Namespace, name: str = "request_code") -> None:
    """Print a code (or token) for the air gap, with its QR code when asked.

    With ``--json`` the code is the ``name`` member of a JSON object, and a
    terminal QR code goes to stderr so that stdout stays JSON.
    """
    if args.json:
        print_json({name: text, "product": args.product})
    else:
        print(text)
    if args.qr or args.qr_png:
        from verifier.qr import qr_png, qr_terminal

        if args.qr:
            print(qr_terminal(text), end="", file=sys.stderr if args.json else sys.stdout)
        if args.qr_png:
            qr_png(text, args.qr_png)
            print(f"QR code written to {args.qr_png}", file=sys.stderr)


def _describe(status: Status) -> str:
    lic = status.license
    if lic is None:
        reason = status.error.message if status.error else "no activation token stored"
        return f"{status.state}: {reason}"
    last = last_day(lic.license_expires_at)
    if lic.lease_limited:
        token = f"lease until {format_utc(lic.expires_at)} (renews automatically"
    else:
        token = f"token valid until {format_utc(lic.expires_at)} (the license's end"
    line = (
        f"{status.state}: license {lic.license_id} for {lic.product}, features "
        f"{', '.join(sorted(lic.features)) or '-'}, {token}, {status.days_left} days left); "
        + (f"license until {last}" if last else "license never expires")
    )
    if status.state == TokenState.GRACE:
        line += " — renew now"
    return line


def _print_notes(notes: tuple[str, ...]) -> None:
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(args.store or default_store_path(args.product))


def _token_argument(value: str) -> str:
    """The token given to ``install``, refusing the things people paste or name instead.

    An argument is a file name only when such a file exists or it looks like a
    path (a token has no ``/``); anything else is the token itself, unfolded
    as it came from a mail or a terminal (line breaks, spaces, ``> `` quotes).
    """
    if value != "-" and _names_file(value):
        if not os.path.lexists(value):
            raise BadInputError(
                f"no such file: {value}; install takes the token itself, or - to read it from stdin"
            )
        raise BadInputError(
            f"{value!r} is a file name; install takes the token itself: "
            f"'verifier install - < {value}'"
        )
    token = unfold(_stdin_or(value))
    kind = code_kind(token)
    if kind == "activation request code":
        raise BadInputError(
            "this is a request code (what 'verifier request' prints for the provider); "
            "install takes the activation token the provider sends back, which starts with 'ey'"
        )
    if kind == "renewal code":
        raise BadInputError(
            "this is a renewal code (what 'verifier renew --offline' prints for the provider); "
            "install takes the activation token the provider sends back, which starts with 'ey'"
        )
    if kind == "revocation list":
        raise BadInputError("this is a revocation list: 'verifier revocations install' takes it")
    return token


def _names_file(value: str) -> bool:
    # lexists answers False for a name too long to be a file (any token-sized text).
    return (
        "/" in value
        or value.endswith((".token", ".jwt", ".txt", ".json"))
        or (os.path.lexists(value))
    )


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
    _print_code(request_code(args.product, _stdin_or(args.key), machine_id=args.machine_id), args)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    token = _token_argument(args.token)
    verifier = _verifier(args)
    lic = verifier.verify(token)  # refuse before storing anything
    store = _store(args)
    store.save(token)
    if args.json:
        print_json({**_installed(lic, store, "installed"), "notes": list(verifier.notes)})
        return 0
    until = format_utc(lic.expires_at)
    print(f"installed license {lic.license_id} for {lic.product} (valid until {until})")
    print(f"token stored in {store.path.resolve()}")
    _print_notes(verifier.notes)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    try:
        verifier = _verifier(args)
        status = verifier.status(_store(args).load())
    except LicenseError as err:
        if not args.json:
            raise
        # The check itself could not run (trusted keys, token store): still a state.
        message = located(err, _PATHS, args.argv)
        print_json({"state": "error", **refusal_document(err.code, message), "reason": err.message})
        complain(args.prog, message)
        return EXIT_REFUSED
    if args.json:
        data = status.to_dict()
        if status.state == "missing":
            data.setdefault("code", "token-missing")
            data.setdefault("reason", f"no activation token in {_store(args).path.resolve()}")
        if "reason" in data:
            data["detail"] = data["reason"]  # the member every refusal's JSON has
        print_json(data)
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
        code = renewal_code(held, product=args.product, machine_id=args.machine_id)
        _print_code(code, args, "renewal_code")
        print(
            "give this renewal code to your provider, then run 'verifier install' "
            "with the token you get back",
            file=sys.stderr,
        )
        return 0
    status = verifier.status(held)
    if status.state == TokenState.CLOCK_ROLLBACK and status.error is not None:
        raise status.error
    if status.state == TokenState.VALID and not args.force:
        # Not due: still learn what the provider revoked since the last run.
        verifier.refresh_revocations(args.server)
        status = verifier.status(held)
    lic = status.license
    if status.state == TokenState.VALID and lic is not None and not args.force:
        if args.json:
            print_json({"renewed": False, **status.to_dict()})
            return 0
        print(
            f"not due: the lease runs until {format_utc(lic.expires_at)}; "
            f"renewal starts {format_utc(lic.renew_at)}"
        )
        _print_notes(verifier.notes)
        return 0
    from verifier.client import renew_online

    lic = renew_online(args.server, verifier, store)
    if args.json:
        lst = verifier.revocations
        print_json(
            {
                "renewed": True,
                **_installed(lic, store, "renewed online"),
                "revocations_serial": None if lst is None else lst.serial,
                "notes": list(verifier.notes),
            }
        )
        return 0
    print(f"renewed: license {lic.license_id} for {lic.product} until {format_utc(lic.expires_at)}")
    _print_notes(verifier.notes)
    return 0


def cmd_revocations_install(args: argparse.Namespace) -> int:
    text = sys.stdin.read(4 * 1024 * 1024 + 1) if args.file == "-" else _read_list(args.file)
    if code_kind(text) == "activation token":
        raise BadInputError("this is an activation token: 'verifier install' takes it")
    verifier = _verifier(args)
    lst = verifier.apply_revocations(text)
    status = verifier.status(_store(args).load())
    if args.json:
        print_json(
            {
                "serial": lst.serial,
                "entries": len(lst),
                "fresh_until": format_utc(lst.expires_at),
                "status": status.to_dict(),
            }
        )
        return 0
    print(
        f"revocation list serial {lst.serial} in force ({len(lst)} entries, "
        f"fresh until {format_utc(lst.expires_at)})"
    )
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
        raise UsageError(message, self.prog)


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
    version = f"{prog} (licet) {__version__}"
    parser = _Parser(prog=prog, description="Activate and check this server's license.")
    parser.set_defaults(prog=prog)  # refusal lines a command prints itself name the tool
    parser.add_argument("--version", action="version", version=version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fp = _command(commands, version, "fingerprint", "Show what identifies this server.")
    _env_option(
        fp, "--product", "LICET_PRODUCT", "Also show the product's fingerprint", required=False
    )
    fp.set_defaults(run=cmd_fingerprint)

    request_help = "Print an activation request code for an air-gapped activation."
    req = _command(commands, version, "request", request_help)
    _env_option(req, "--product", "LICET_PRODUCT", "The product", required=True)
    req.add_argument(
        "--key", required=True, help="The activation key, or - to read it from stdin (required)."
    )
    _qr_options(req)
    req.set_defaults(run=cmd_request)

    rev_install = _revocations_install(commands, version)
    for name, help_text, handler in (
        ("install", "Verify an activation token and store it.", cmd_install),
        ("status", "Check the stored token offline (exit 0 when it may run).", cmd_status),
        ("activate", "Activate online: automatically by IP, or manually with --key.", cmd_activate),
        ("renew", "Renew the lease: online with --server, or print a renewal code.", cmd_renew),
        ("revocations install", "", cmd_revocations_install),
    ):
        if name == "revocations install":
            sub = rev_install
        else:
            sub = _command(commands, version, name, help_text)
        _own_options(sub, name)
        _panel_options(sub)
        sub.set_defaults(run=handler)
    return parser


def _command(commands: Any, version: str, name: str, help_text: str) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("--version", action="version", version=version)
    _machine_id_option(sub)
    sub.add_argument("--json", action="store_true", help="Print JSON (default: text).")
    return sub


def _machine_id_option(sub: argparse.ArgumentParser) -> None:
    _env_option(
        sub,
        "--machine-id",
        "LICET_MACHINE_ID",
        "Stable id replacing hardware identifiers (containers, cloned VMs)",
        required=False,
    )


def _revocations_install(commands: Any, version: str) -> argparse.ArgumentParser:
    """``verifier revocations install``: its own parser, options of a command but nested."""
    revocations = commands.add_parser(
        "revocations", help="Apply the provider's signed revocation list."
    )
    revocations.add_argument("--version", action="version", version=version)
    rev_commands = revocations.add_subparsers(dest="action", required=True, metavar="ACTION")
    rev_install: argparse.ArgumentParser = rev_commands.add_parser(
        "install", help="Check a revocation list and apply it (a lower serial is refused)."
    )
    rev_install.add_argument("--version", action="version", version=version)
    rev_install.add_argument("file", help="The list (from 'issuer revocations export'), or -.")
    _machine_id_option(rev_install)
    rev_install.add_argument("--json", action="store_true", help="Print JSON (default: text).")
    return rev_install


def _own_options(sub: argparse.ArgumentParser, name: str) -> None:
    """The options only one of the token commands takes."""
    if name == "renew":
        how = sub.add_mutually_exclusive_group(required=True)
        how.add_argument("--server", help="License server URL (required unless --offline).")
        how.add_argument(
            "--offline", action="store_true", help="Print a renewal code for the provider."
        )
        sub.add_argument("--force", action="store_true", help="Renew even before the grace window.")
        _qr_options(sub)
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


def _panel_options(sub: argparse.ArgumentParser) -> None:
    """What every token command needs: the product, the trusted keys, the token store."""
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


def _qr_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--qr", action="store_true", help="Also print the code as a QR code.")
    sub.add_argument(
        "--qr-png", type=Path, metavar="FILE", help="Write the QR code as PNG (default: none)."
    )


def main(argv: list[str] | None = None, prog: str = "verifier") -> None:
    """Console-script entry point (``argv`` and ``prog`` for ``licet verifier``)."""

    def invoke() -> None:
        args = build_parser(prog).parse_args(argv)
        args.argv = sys.argv[1:] if argv is None else argv
        code = args.run(args)
        if code:
            raise SystemExit(code)

    run(prog, invoke, argv=argv, paths=_PATHS, usage_errors=(UsageError,))
