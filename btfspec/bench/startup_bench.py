"""``btfspec bench startup``: commands end to end, process start included, beside the interpreter and bpftool.

Each row runs a whole process (``btfspec --help``; ``btfspec dump`` of a BTF beside ``bpftool btf dump``
of the same file), so imports, the interpreter's own start and writing the text all count, as they do
for a user at a shell.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from btfspec.bench.timing import Row, Timing, best_of

HELP_TARGET = 0.2  # seconds for ``btfspec --help``, process start included
DUMP_TARGET = 3.0  # ``btfspec dump`` against ``bpftool btf dump``


def btfspec_command() -> list[str]:
    """How a user starts btfspec with this interpreter: the console script beside it, else ``-m btfspec``."""
    script = Path(sys.executable).parent / "btfspec"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "btfspec"]


def _timed(argv: list[str], repeat: int) -> Timing:
    """Best wall time of ``repeat`` runs of ``argv`` (output discarded); ValueError when a run fails."""
    def once() -> None:
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode:
            last = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise ValueError(f"{' '.join(argv)} exited with status {done.returncode}: {last[0]}")
    return best_of(once, repeat)


def run(path: str, repeat: int = 10) -> list[Row]:
    """Time ``--help`` and ``dump`` of ``path`` end to end, with their baselines (ValueError: a run failed)."""
    cmd = btfspec_command()
    python_s = _timed([sys.executable, "-c", "pass"], repeat)
    rows = [Row("python -c pass (baseline)", python_s),
            Row("btfspec --help", _timed([*cmd, "--help"], repeat), "python -c pass", python_s,
                target_seconds=HELP_TARGET)]
    bpftool = shutil.which("bpftool")
    bpftool_s: float | None = None
    if bpftool:
        bpftool_s = _timed([bpftool, "btf", "dump", "file", path], repeat)
        rows.append(Row("bpftool btf dump (baseline)", bpftool_s))
    rows.append(Row("btfspec dump", _timed([*cmd, "dump", path], repeat), "bpftool btf dump", bpftool_s,
                    DUMP_TARGET))
    return rows
