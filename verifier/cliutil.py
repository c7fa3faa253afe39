"""The one place where a refusal becomes a stderr line and an exit code (shared by every CLI).

All three command lines (verifier, keytool, issuer) run through :func:`run`,
so they behave alike: 0 on success, 1 with one line on stderr for a refusal,
2 with one line for bad usage (an option or argument of the wrong form,
:class:`~verifier.errors.BadInputError` included), and never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from verifier.errors import BadInputError, LicenseError
from verifier.fileio import os_error_words

EXIT_REFUSED = 1
EXIT_USAGE = 2


def fail(prog: str, message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Print ``prog: message`` on stderr and exit."""
    print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(code)


def run(
    prog: str,
    main: Callable[[], Any],
    *,
    usage_errors: tuple[type[Exception], ...] = (),
) -> NoReturn:
    """Run a CLI entry point, mapping every failure to one line and an exit code.

    Args:
        prog: the command's name, prefixed to every message.
        main: the entry point.
        usage_errors: the CLI library's own usage errors (they carry
            ``format_message()``); reported as one line with exit 2.
    """
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
        fail(prog, message, EXIT_USAGE)
    except BadInputError as err:
        fail(prog, err.message, EXIT_USAGE)
    except LicenseError as err:
        fail(prog, err.message)
    except KeyboardInterrupt:
        fail(prog, "interrupted", 130)
    except OSError as err:  # a file the command itself wrote, e.g. --out: its name is the user's
        fail(prog, f"{err.filename or ''}: {os_error_words(err, writing=True)}".lstrip(": "))
    except Exception as err:  # a bug: still one line, never a traceback
        fail(prog, f"internal error: {type(err).__name__}: {err}")
    raise SystemExit(result if isinstance(result, int) else 0)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (the ``--json`` output of every command)."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
