"""External programs as BTF implementations, driven through command templates.

A template is a command line with placeholders, split with :func:`shlex.split`; each placeholder is
replaced by a path in a private temporary directory (inside any argument, so ``--out={out}`` works):

* distill:  ``{split} {base} {out_base} {out_split}`` -- e.g. ``my-distill {split} {base} {out_base} {out_split}``
* relocate: ``{split} {distilled_base} {base} {out}``

Protocol: inputs are written as raw BTF files, the program runs (no shell, no stdin, a new process
group) with a timeout.  Exit status 0 means success and the output files are read; any other exit
status is a clean error whose errno is the last integer token printed on stdout (made negative;
``-EINVAL`` when there is none; ``-ENOENT`` style names are understood too).  A program still running
at the timeout is killed with its whole process group (``status="timeout"``); one killed by a signal
is a ``crash`` (``detail`` names the signal); exit 0 without writing every output is a ``crash`` too
(``detail`` says which output is missing), so it can never pass as a clean answer.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Mapping

from btfspec.oracle.impls.childproc import signal_name
from btfspec.oracle.impls.outcome import CRASH, DEFAULT_TIMEOUT, ERROR, OK, TIMEOUT, Outcome

IMPL = "cmd"
DISTILL_FIELDS = ("split", "base", "out_base", "out_split")
RELOCATE_FIELDS = ("split", "distilled_base", "base", "out")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_INT_TOKEN = re.compile(r"[-+]?\d+")
_NAME_TOKEN = re.compile(r"-?(E[A-Z0-9]+)")
_TAIL = 2000


class TemplateError(ValueError):
    """A command template is unusable (empty, unbalanced quotes, unknown or missing placeholders)."""


def check_template(template: str, fields: tuple[str, ...], what: str) -> list[str]:
    """Split ``template`` and check its placeholders; returns the argument list (unsubstituted)."""
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise TemplateError(f"{what} template {template!r}: {exc}") from None
    if not argv:
        raise TemplateError(f"{what} template is empty")
    used = {m.group(1) for arg in argv for m in _PLACEHOLDER.finditer(arg)}
    unknown = sorted(used - set(fields))
    if unknown:
        raise TemplateError(f"{what} template uses unknown placeholder(s) "
                            f"{', '.join('{' + u + '}' for u in unknown)} (known: "
                            f"{', '.join('{' + f + '}' for f in fields)})")
    outs = [f for f in fields if f.startswith("out")]
    missing = [f for f in outs if f not in used]
    if missing:
        raise TemplateError(f"{what} template must name its output file(s): "
                            f"{', '.join('{' + m + '}' for m in missing)}")
    return argv


def substitute(argv: list[str], paths: Mapping[str, str]) -> list[str]:
    """Replace ``{name}`` placeholders inside every argument by ``paths[name]``."""
    return [_PLACEHOLDER.sub(lambda m: paths.get(m.group(1), m.group(0)), arg) for arg in argv]


def errno_from_stdout(text: str) -> int:
    """The errno a failing program reports: its last integer (or ``EXXX`` name) token, made negative."""
    for token in reversed(text.split()):
        token = token.strip(",;:.()[]'\"")
        if _INT_TOKEN.fullmatch(token):
            value = abs(int(token))
            if value:
                return -value
            continue
        m = _NAME_TOKEN.fullmatch(token)
        if m and isinstance(getattr(_errno, m.group(1), None), int):
            return -int(getattr(_errno, m.group(1)))
    return -_errno.EINVAL


def _tail(data: bytes) -> str:
    return data[-_TAIL:].decode("utf-8", "replace")


class CmdImpl:
    """An external program as an implementation (see the module docstring)."""

    def __init__(self, distill_cmd: str | None = None, relocate_cmd: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, name: str = IMPL) -> None:
        if not distill_cmd and not relocate_cmd:
            raise TemplateError("the cmd implementation needs --distill-cmd and/or --relocate-cmd")
        self.name = name
        self.timeout = timeout
        self.distill_argv = check_template(distill_cmd, DISTILL_FIELDS, "--distill-cmd") if distill_cmd else None
        self.relocate_argv = (check_template(relocate_cmd, RELOCATE_FIELDS, "--relocate-cmd")
                              if relocate_cmd else None)
        caps = set()
        if self.distill_argv:
            caps.add("distill")
        if self.relocate_argv:
            caps.add("relocate")
        self.capabilities: frozenset[str] = frozenset(caps)

    def __repr__(self) -> str:
        return f"CmdImpl(name={self.name!r}, capabilities={sorted(self.capabilities)})"

    # --- operations --------------------------------------------------------------------------------

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """Run the distill template; outputs ``base`` and ``split``."""
        if self.distill_argv is None:
            raise NotImplementedError(f"{self.name}: no --distill-cmd template")
        return self._run(self.distill_argv, {"split": split, "base": base},
                         {"out_base": "base", "out_split": "split"}, "distill", timeout)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """Run the relocate template; output ``split``."""
        if self.relocate_argv is None:
            raise NotImplementedError(f"{self.name}: no --relocate-cmd template")
        return self._run(self.relocate_argv, {"split": split, "distilled_base": distilled_base, "base": base},
                         {"out": "split"}, "relocate", timeout)

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome:
        """Not supported: external programs are asked to distill or relocate only."""
        raise NotImplementedError(f"{self.name}: accept is not supported by external commands")

    # --- running -----------------------------------------------------------------------------------

    def _run(self, argv: list[str], inputs: Mapping[str, bytes], outputs: Mapping[str, str], op: str,
             timeout: float | None) -> Outcome:
        limit = self.timeout if timeout is None else timeout
        with tempfile.TemporaryDirectory(prefix=f"btfspec-{op}-") as tmp:
            paths: dict[str, str] = {}
            for field, data in inputs.items():
                path = os.path.join(tmp, f"{field}.btf")
                with open(path, "wb") as f:
                    f.write(data)
                paths[field] = path
            for field in outputs:
                paths[field] = os.path.join(tmp, f"{field}.btf")
            cmdline = substitute(argv, paths)
            try:
                proc = subprocess.Popen(cmdline, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, cwd=tmp, start_new_session=True)
            except OSError as exc:
                return Outcome(CRASH, log=f"btfspec: cannot run {cmdline[0]!r}: {exc}\n", impl=self.name,
                               detail="cannot start")
            try:
                out, err = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
                out, err = proc.communicate()
                return Outcome(TIMEOUT, log=_tail(err), impl=self.name,
                               detail=f"killed after {limit:g} s")
            log = _tail(err) + (_tail(out) if out.strip() else "")
            rc = proc.returncode
            if rc < 0:
                return Outcome(CRASH, log=log, impl=self.name, detail=signal_name(rc))
            if rc != 0:
                return Outcome(ERROR, errno_from_stdout(out.decode("utf-8", "replace")), log=log,
                               impl=self.name, detail=f"exit status {rc}")
            results: dict[str, bytes] = {}
            for field, role in outputs.items():
                try:
                    with open(paths[field], "rb") as f:
                        results[role] = f.read()
                except OSError:
                    return Outcome(CRASH, log=log + f"btfspec: exit status 0 but no {{{field}}} file\n",
                                   impl=self.name, detail=f"no output {field}")
            return Outcome(OK, outputs=results, log=log, impl=self.name)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the program's process group (it leads its own session), then the program."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
