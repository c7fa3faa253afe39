"""The one place where a refusal becomes a stderr line and an exit code (shared by every CLI).

All three command lines (verifier, keytool, issuer) run through :func:`run`,
so they behave alike: 0 on success, 1 with one line on stderr for a refusal,
2 with one line for bad usage (an option or argument of the wrong form,
:class:`~verifier.errors.BadInputError` included), and never a traceback;
``--version`` anywhere before ``--`` prints the version. With ``--json`` a
failure also prints one JSON object on stdout (:func:`refusal_document`:
``code``, ``detail`` and the data the error carries), so a script can branch
on the code without reading stderr. Text for people goes
through :func:`say` (and refusals through :func:`fail`), which escape any
character that could drive the terminal or hide text.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from verifier import __version__
from verifier.errors import BadInputError, LicenseError
from verifier.fileio import os_error_words
from verifier.text import terminal_safe

EXIT_REFUSED = 1
EXIT_USAGE = 2
#: Click/typer context settings every provider CLI uses: ``-h`` as well as ``--help``.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


class UsageError(Exception):
    """Bad usage found by a command line's own parser (reported by :func:`run` with exit 2).

    Args:
        message: what is wrong.
        prog: the (sub)command whose usage it is, named on the line instead of the tool.
    """

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


#: Where a path option's value may come from: the option, an environment variable, a default.
PathOption = tuple[str, str | None, str]


def fail(prog: str, message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Print ``prog: message`` on stderr, as one line of visible text, and exit."""
    complain(prog, message)
    raise SystemExit(code)


def complain(prog: str, message: str) -> None:
    """Print ``prog: message`` on stderr, as one line of visible text (a refusal's line)."""
    print(f"{prog}: {terminal_safe(' '.join(message.split()))}", file=sys.stderr)


def wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` was given (before any ``--``)."""
    return "--json" in argv[: argv.index("--") if "--" in argv else None]


def refusal_document(
    code: str, detail: str, data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON object a command given ``--json`` prints on stdout when it fails.

    ``code`` is the refusal's stable code (``usage`` for bad usage, ``internal``
    for a bug), ``detail`` the line printed on stderr, and ``data`` what the
    error carries (e.g. ``regenerate_after``); the two fixed members win.
    """
    return {**(data or {}), "code": code, "detail": " ".join(detail.split())}


def origin(option: PathOption, argv: list[str]) -> str:
    """Say where a path came from, so a "missing" message points at the right thing to change."""
    flag, envvar, default = option
    if any(a == flag or a.startswith(flag + "=") for a in argv):
        return f"given by {flag}"
    if envvar and os.environ.get(envvar):
        return f"from {envvar}={os.environ[envvar]}"
    unset = f"neither {flag} nor {envvar} is set" if envvar else f"no {flag} given"
    return f"the default {default}, relative to {os.getcwd()}: {unset}"


def located(err: LicenseError, paths: Mapping[str, PathOption] | None, argv: list[str]) -> str:
    """``err``'s message, with where its path came from when it is about a missing file."""
    where = (paths or {}).get(err.code)
    message = err.worded(option_name)
    return message if where is None else f"{message} [{origin(where, argv)}]"


def run(
    prog: str,
    main: Callable[[], Any],
    *,
    argv: list[str] | None = None,
    paths: Mapping[str, PathOption] | None = None,
    usage_errors: tuple[type[Exception], ...] = (),
) -> NoReturn:
    """Run a CLI entry point, mapping every failure to one line and an exit code.

    Args:
        prog: the command's name, prefixed to every message.
        main: the entry point.
        argv: its arguments (default ``sys.argv[1:]``), scanned for ``--version``.
        paths: for an error code about a missing file or folder, the option that
            names it; the message then says where the path came from.
        usage_errors: the CLI library's own usage errors (they carry
            ``format_message()``); reported as one line with exit 2.
    """
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args[: args.index("--") if "--" in args else None]:
        print(f"{prog} (licet) {__version__}")
        raise SystemExit(0)
    as_json = wants_json(args)

    def refuse(
        code: str,
        message: str,
        exit_code: int,
        data: Mapping[str, Any] | None = None,
        *,
        who: str | None = None,
    ) -> NoReturn:
        if as_json:
            print_json(refusal_document(code, message, data))
        fail(who or prog, message, exit_code)

    try:
        result = main()
    except SystemExit:
        raise
    except usage_errors as err:
        format_message = getattr(err, "format_message", None)
        message = str(format_message() if callable(format_message) else err)
        if "\n" in message.strip():  # a help screen asked for by giving no command
            print(message, file=sys.stderr)
            raise SystemExit(EXIT_USAGE) from None
        refuse("usage", message, EXIT_USAGE, who=getattr(err, "prog", None))
    except BadInputError as err:
        refuse(err.code, err.worded(option_name), EXIT_USAGE, err.details())
    except LicenseError as err:
        refuse(err.code, located(err, paths, args), EXIT_REFUSED, err.details())
    except KeyboardInterrupt:
        refuse("interrupted", "interrupted", 130)
    except OSError as err:  # a file the command itself wrote, e.g. --out: its name is the user's
        message = f"{err.filename or ''}: {os_error_words(err, writing=True)}".lstrip(": ")
        refuse("os-error", message, EXIT_REFUSED)
    except Exception as err:  # a bug: still one line, never a traceback
        refuse("internal", f"internal error: {type(err).__name__}: {err}", EXIT_REFUSED)
    raise SystemExit(result if isinstance(result, int) else 0)


def option_name(name: str) -> str:
    """How a command line says an input a refusal names: ``new_product`` is ``--new-product``."""
    return "--" + name.replace("_", "-")


def confirm(question: str, yes: bool) -> None:
    """Ask ``question`` on a terminal before a destructive change; exit 1 unless answered yes.

    ``--yes`` (``yes``) skips the question. Without a terminal there is no one
    to ask: scripts and cron jobs go on, a person at a terminal gets a chance
    to reconsider.
    """
    if yes or not sys.stdin.isatty():
        return
    print(f"{terminal_safe(question)} [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        print("not confirmed: nothing was changed", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED)


def say(line: str) -> None:
    r"""Print one line for a person on stdout; stored text in it cannot drive the terminal.

    Controls, bidi overrides and other characters that hide text are printed
    as escapes (``\x9b``, ``\u202e``): a record written before such text was
    refused shows what it holds.
    """
    print(terminal_safe(line))


def print_json(data: Any) -> None:
    r"""Print ``data`` as indented JSON on stdout (the ``--json`` output of every command).

    Nothing in it can drive a terminal: ``ensure_ascii`` (the default) writes
    every control, bidi and other non-ASCII character as ``\uXXXX``, and DEL,
    the one ASCII control it leaves, is written so too.
    """
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    print(text.replace("\x7f", "\\u007f"))
