"""``btfspec bench spec``: open+index, full decode, build, raw dump and the Construct codec on vmlinux."""

from __future__ import annotations

import shutil
import subprocess

from btfspec.bench.timing import Row, best_of
from btfspec.spec import grammar
from btfspec.spec.model import Btf


def run(blob: bytes, path: str, repeat: int = 5) -> list[Row]:
    """Measure every spec operation on ``blob`` (read from ``path``) beside libbpf and bpftool."""
    from btfspec.oracle.impls.libbpf import get_libbpf, unavailable_reason

    rows: list[Row] = []
    libbpf_s: float | None = None
    if unavailable_reason() is None:
        lib = get_libbpf()
        libbpf_s = best_of(lambda: lib.parse(blob), repeat)
        rows.append(Row("libbpf btf__new (baseline)", libbpf_s))

    def open_index() -> Btf:
        return Btf.from_bytes(blob)

    rows.append(Row("open + index", best_of(open_index, repeat), "libbpf btf__new", libbpf_s, 2))

    def full_decode() -> None:
        Btf.from_bytes(blob).decode_all()

    rows.append(Row("open + full decode", best_of(full_decode, repeat), "libbpf btf__new", libbpf_s, 6))
    decoded = Btf.from_bytes(blob)
    decoded.decode_all()
    rows.append(Row("build (re-encode)", best_of(decoded.to_bytes, repeat), "libbpf btf__new", libbpf_s))

    bpftool = shutil.which("bpftool")
    bpftool_s: float | None = None
    if bpftool:
        def run_bpftool() -> None:
            subprocess.run([bpftool, "btf", "dump", "file", path, "format", "raw"],
                           stdout=subprocess.DEVNULL, check=True)
        bpftool_s = best_of(run_bpftool, repeat)
        rows.append(Row("bpftool dump raw (baseline)", bpftool_s))
    try:
        from btfspec.spec.text import dump_raw_chunks
    except ImportError:
        dump_raw_chunks = None
    if dump_raw_chunks is not None:
        def dump() -> None:  # the bytes bpftool writes, as `btfspec dump` writes them
            dump_raw_chunks(Btf.from_bytes(blob))
        rows.append(Row("open + raw dump", best_of(dump, repeat), "bpftool dump", bpftool_s, 1.5))

    order = grammar.byteorder_of(blob)
    container = grammar.parse(blob, use_compiled=True)
    rows.append(Row("Construct parse (compiled)", best_of(lambda: grammar.parse(blob, use_compiled=True), 2),
                    "libbpf btf__new", libbpf_s, 100))
    rows.append(Row("Construct build (compiled)",
                    best_of(lambda: grammar.build(container, order, use_compiled=True), 2),
                    "libbpf btf__new", libbpf_s, 200))
    return rows
