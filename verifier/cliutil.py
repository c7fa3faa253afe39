"""The one place where a refusal becomes a stderr line and an exit code (shared by every CLI).

All three command lines (verifier, keytool, issuer) run through :func:`run`,
so they behave alike: 0 on success, 1 with one line on stderr for a refusal,
2 for bad usage, and never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from verifier.errors import LicenseError
from verifier.fileio import os_error_words

EXIT_REFUSED = 1
EXIT_USAGE = 2


def fail(prog: str, message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Print ``prog: message`` on stderr and exit."""
    print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(code)


def run(prog: str, main: Callable[[], Any]) -> NoReturn:
    """Run a CLI entry point, mapping every failure to one line and an exit code."""
    try:
        main()
    except SystemExit:
        raise
    except LicenseError as err:
        fail(prog, err.message)
    except KeyboardInterrupt:
        fail(prog, "interrupted", 130)
    except OSError as err:  # a file the command itself wrote, e.g. --out: its name is the user's
        fail(prog, f"{err.filename or ''}: {os_error_words(err, writing=True)}".lstrip(": "))
    except Exception as err:  # a bug: still one line, never a traceback
        fail(prog, f"internal error: {type(err).__name__}: {err}")
    raise SystemExit(0)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (the ``--json`` output of every command)."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))
