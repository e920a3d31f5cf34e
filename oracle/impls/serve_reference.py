"""The Python reference as a ``serve`` program: ``python -m btfspec.oracle.impls.serve_reference [--strict]``.

It speaks the protocol of :mod:`btfspec.oracle.impls.serve` (``oracle/impls/PROTOCOL.md``) and is what
``--impl serve --serve-cmd "python -m btfspec.oracle.impls.serve_reference"`` runs: the same answers
as ``--impl python`` (``python-strict`` with ``--strict``), one process for every request.  The
outcome's log goes to stderr; a reference bug (an exception other than BtfError, a ``crash``
outcome) ends the program with exit status 70, which the client reports as a crash.

:func:`serve` is the loop itself, for any pair of outcome functions (the oracle-strength benchmark
serves mutants of the reference through it).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import BinaryIO, TextIO

from btfspec.oracle.impls.outcome import CRASH, OK, Outcome

EXIT_REFERENCE_BUG = 70
DistillFn = Callable[[bytes, bytes], Outcome]
RelocateFn = Callable[[bytes, bytes, bytes], Outcome]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def serve(distill: DistillFn, relocate: RelocateFn, stdin: BinaryIO, stdout: BinaryIO, stderr: TextIO) -> int:
    """Answer requests until EOF on ``stdin``; the exit status (0, or 70 after a reference bug)."""
    stdout.write(b"ready distill relocate\n")
    stdout.flush()
    for raw in stdin:
        words = raw.decode("utf-8", "replace").split()
        if len(words) == 5 and words[0] == "distill":
            out = distill(_read(words[1]), _read(words[2]))
            outputs = {"base": words[3], "split": words[4]}
        elif len(words) == 5 and words[0] == "relocate":
            out = relocate(_read(words[1]), _read(words[2]), _read(words[3]))
            outputs = {"split": words[4]}
        else:
            stderr.write(f"serve_reference: bad request {raw[:200]!r}\n")
            stdout.write(b"error -22 bad request\n")
            stdout.flush()
            continue
        if out.log:
            stderr.write(out.log)
            stderr.flush()
        if out.status == CRASH:
            stderr.write(f"serve_reference: reference bug ({out.detail})\n")
            stderr.flush()
            return EXIT_REFERENCE_BUG
        if out.status == OK:
            for role, path in outputs.items():
                _write(path, out.outputs[role])
            stdout.write(b"ok\n")
        else:
            reason = (out.log.strip().splitlines() or [out.detail])[-1] if (out.log or out.detail) else ""
            stdout.write(f"error {out.errno} {reason}".rstrip().encode() + b"\n")
        stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Serve the Python reference (``--strict``: python-strict) on stdin/stdout."""
    from btfspec.oracle.impls.adapter import PythonImpl

    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--strict"]):
        sys.stderr.write("usage: python -m btfspec.oracle.impls.serve_reference [--strict]\n")
        return 2
    impl = PythonImpl(strict=args == ["--strict"])
    return serve(impl.distill, impl.relocate, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
