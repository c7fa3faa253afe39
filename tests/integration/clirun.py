"""Run the console commands: in this process by default, or as the installed scripts.

Most CLI tests check a command's many options and refusals; for those the
subprocess only repeats what the first one proved (argument parsing through the
installed script, exit codes, the environment) at ~0.3 s of interpreter start
and imports each. So :func:`cli` calls the same entry point (``main(argv)``)
in-process, with stdin, stdout, stderr, the environment and the working folder
swapped for the call, and returns the same ``CompletedProcess``.

A real subprocess runs the installed script when the test asks for it
(``process=True``), when the test is marked ``e2e``, when ``LICET_TEST_CLI=process``
is set (the whole suite end to end, e.g. before a release), for the long-running
``serve`` and ``console`` commands, and for calls from another thread (the
swapped streams belong to the whole process).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import timecheck

BIN = Path(sys.executable).parent
#: Set for the duration of a test marked ``e2e`` (tests/conftest.py).
END_TO_END = threading.Event()
_LONG_RUNNING = {"serve", "console"}


def script(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"console script {name} is not installed next to {sys.executable}"
    return str(path)


#: The module whose ``main(argv)`` each console script calls (pyproject's [project.scripts]).
_ENTRY_POINTS = {"issuer": "issuer.cli", "keytool": "keytool.cli", "verifier": "verifier.cli", "licet": "issuer.umbrella"}


def _entry_point(name: str) -> Callable[[list[str]], None]:
    assert name in _ENTRY_POINTS, f"no console script named {name}"
    return importlib.import_module(_ENTRY_POINTS[name]).main  # type: ignore[no-any-return]


def in_subprocess(name: str, args: tuple[str, ...], process: bool | None) -> bool:
    """Whether this call runs the installed script rather than ``main(argv)`` in-process."""
    if process is not None:
        return process
    return (
        END_TO_END.is_set()
        or os.environ.get("LICET_TEST_CLI") == "process"
        or bool(_LONG_RUNNING & set(args[:2]))
        or threading.current_thread() is not threading.main_thread()
    )


def _decoded(stream: io.TextIOWrapper) -> str:
    stream.flush()
    raw = stream.buffer.getvalue()  # type: ignore[attr-defined]
    # As subprocess.run(text=True) reads it: universal newlines.
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("LICET_")]:
        del os.environ[key]
    os.environ.setdefault("COLUMNS", "80")  # a subprocess with piped output is 80 wide
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_in_process(
    name: str, args: tuple[str, ...], cwd: Path, input: str | None, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    stdin = io.TextIOWrapper(io.BytesIO((input or "").encode()), encoding="utf-8")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    main = _entry_point(name)
    returncode = 0
    with (
        _environment(env),
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        saved_stdin, sys.stdin = sys.stdin, stdin
        try:
            main(list(args))
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
                returncode = 1
            else:
                returncode = exit_.code or 0
        finally:
            sys.stdin = saved_stdin
    return subprocess.CompletedProcess([name, *args], returncode, _decoded(stdout), _decoded(stderr))


def cli(
    name: str,
    *args: str,
    cwd: Path,
    input: str | None = None,
    env: dict[str, str] | None = None,
    check: int | None = 0,
    process: bool | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run console command ``name`` with ``args``; assert its exit code is ``check`` (unless None)."""
    if in_subprocess(name, args, process):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LICET_")}
        full_env.update(env or {})
        proc = subprocess.run(
            [script(name), *args], cwd=cwd, input=input, env=full_env, capture_output=True, text=True, timeout=120
        )
    else:
        proc = _run_in_process(name, args, cwd, input, env or {})
    timecheck.collect_text(" ".join([name, *args]), proc.stdout)
    if check is not None:
        assert proc.returncode == check, f"{name} {args}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def assert_one_line_refusal(proc: subprocess.CompletedProcess[str], needle: str, code: int = 1) -> None:
    assert proc.returncode == code, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def provider_home(folder: Path, *licenses: tuple[str, ...], process: bool | None = None) -> Path:
    """A provider folder made with the real console scripts: keys, trust file, ledger.

    ``process`` as for :func:`cli`: ``False`` builds it in-process even in an
    ``e2e`` test, whose subject is other commands.
    """
    cli("keytool", "new", cwd=folder, process=process)
    cli("keytool", "export", cwd=folder, process=process)
    cli("issuer", "init", "--name", "acme-hosting", cwd=folder, process=process)
    for args in licenses:
        cli("issuer", "license", "create", *args, cwd=folder, process=process)
    return folder
