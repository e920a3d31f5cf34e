"""Shared CLI plumbing: exit codes, one-line errors, ``--json`` and ``--impl`` options."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from btfspec.spec.errors import BtfError, InputError, errno_text

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, status: int = EXIT_USAGE) -> None:
    """Print ``btfspec: message`` on stderr and exit with ``status``."""
    click.echo(f"btfspec: {message}", err=True)
    sys.exit(status)


_AT_TOP = False  # set by :func:`btfspec.cli.run`: this process is the ``btfspec`` command itself


def running_as_command() -> None:
    """Mark this process as the ``btfspec`` command (not a test or a caller driving the click group)."""
    global _AT_TOP
    _AT_TOP = True


def leave_now() -> None:
    """End a finished command that holds nothing to clean up, without the interpreter's teardown.

    Freeing every module at exit costs a one-shot command ~20 ms once numpy is loaded (a vmlinux
    ``dump`` is ~75 ms in bpftool). Only in the ``btfspec`` process itself (a test's in-process call
    returns normally), with stdout and stderr flushed, and with no other thread or exit handler that
    would be skipped; otherwise a no-op, and the command returns as usual.
    """
    import atexit
    import threading

    if not _AT_TOP or threading.active_count() != 1 or atexit._ncallbacks():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_OK)


def quiet_stdout() -> None:
    """Point stdout at /dev/null after a closed pipe (``| head``) so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def stdout_closed() -> bool:
    """Has the reader of stdout gone (a BrokenPipeError then came from stdout, not from a helper's pipe)?"""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        return True
    return False


def guarded(func: F) -> F:
    """Turn known exceptions into one-line errors: unreadable input -> 2, invalid BTF -> 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail(str(exc), EXIT_USAGE)
        except BtfError as exc:
            fail(f"invalid BTF: {exc} [{errno_text(exc.errno)}]", EXIT_NEGATIVE)
        except BrokenPipeError as exc:
            if stdout_closed():  # ``| head`` stopped reading: not an error
                quiet_stdout()
                sys.exit(EXIT_OK)
            fail(f"a helper process closed its pipe: {exc.strerror or exc} [-EPIPE (32)]", EXIT_USAGE)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        return None

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Report as JSON on stdout.")


def emit_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON on stdout."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


def split_list(value: str | None) -> list[str]:
    """Split a comma-separated option value into its non-empty items."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]
