"""Mutants of the Python reference for ``btfspec bench oracle-strength``, and the server that runs one.

Each :class:`Mutant` is a one- or two-line behavioural change of ``oracle/impls/reference.py``, written
as an exact source replacement.  It is applied at run time to a *copy* of the reference's source,
compiled as a separate module; the reference itself is never touched.  Several change only bytes
that a semantic comparison forgives (type order, string layout, byte order, kflag): only a byte
differential against libbpf (P3) can see those.

``python -m btfspec.bench.mutants ID`` serves mutant ``ID`` (``control``: the unmutated copy) over
the ``serve`` protocol (:mod:`btfspec.oracle.impls.serve_reference`).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass

from btfspec.oracle.impls.outcome import Outcome

REFERENCE = "btfspec.oracle.impls.reference"
CONTROL = "control"


@dataclass(frozen=True)
class Mutant:
    """``old`` (occurring exactly once in the reference) becomes ``new``."""

    id: str
    op: str  # distill / relocate
    what: str
    old: str
    new: str
    bytes_only: bool = False  # semantically equivalent output: only a byte differential sees it


MUTANTS: tuple[Mutant, ...] = (
    # --- distill ----------------------------------------------------------------------------------
    Mutant("D01-type-tag-not-markable", "distill", "a base TYPE_TAG reached from the module fails the distillation",
           "                       Kind.FUNC_PROTO, Kind.TYPE_TAG})\n_TO_SPLIT",
           "                       Kind.FUNC_PROTO})\n_TO_SPLIT"),
    Mutant("D02-kind-check-errno", "distill", "the unexpected-kind error is -EOPNOTSUPP, not -EINVAL",
           'raise run.fail(EINVAL, f"unexpected reference to base type', 'raise run.fail(ENOTSUP, f"unexpected '
           'reference to base type'),
    Mutant("D03-named-composite-descends", "distill", "marking descends into named base composites",
           "if t.kind in COMPOSITE_KINDS and run.named(src, t, ref):",
           "if t.kind in COMPOSITE_KINDS and run.named(src, t, ref) and False:"),
    Mutant("D04-enum-size-check", "distill", "a base enum of size 3, 5, 6 or 7 is distilled (libbpf: -EINVAL)",
           "if not size or size & (size - 1) or size > 8:", "if not size or size > 8:"),
    Mutant("D05-enum64-kept", "distill", "a base ENUM64 stays ENUM64 in the distilled base",
           "                    k = Kind.ENUM\n", ""),
    Mutant("D06-base-order-reversed", "distill", "distilled base types in descending id order",
           "    marked.sort()\n", "    marked.sort(reverse=True)\n", bytes_only=True),
    Mutant("D07-name-offset-shifted", "distill", "distilled base names at other string offsets",
           "name_off = dst.add_str(name) if name else 0", 'name_off = dst.add_str(b"~" + name) + 1 if name else 0',
           bytes_only=True),
    Mutant("D08-byte-order-flipped", "distill", "the distilled BTF in the other byte order",
           "new_base = Btf(order=src.order)", 'new_base = Btf(order="big" if src.order == "little" else "little")',
           bytes_only=True),
    Mutant("D09-q6-not-reproduced", "distill", "an empty distilled base: the second pass runs in split mode (Q6)",
           'run.choose(Q6, bool(marked) and new_split.start_id == 1, False,', 'run.choose(Q6, False, False,'),
    Mutant("D10-split-id-off-by-one", "distill", "a reference to the first split type is not renumbered",
           "return (v - diff) & U32 if v >= split_start else v", "return (v - diff) & U32 if v > split_start else v"),
    Mutant("D11-fwd-not-a-leaf", "distill", "a reached base FWD fails the distillation",
           "_BASE_LEAF = frozenset({Kind.INT, Kind.FLOAT, Kind.FWD})",
           "_BASE_LEAF = frozenset({Kind.INT, Kind.FLOAT})"),
    Mutant("D12-composite-kflag-kept", "distill", "a distilled base composite keeps its kflag",
           "dst.add_type(BtfType(name_off, make_info(k), t.size))",
           "dst.add_type(BtfType(name_off, make_info(k, kflag=t.kflag), t.size))", bytes_only=True),
    Mutant("D13-strings-not-deduplicated", "distill", "split strings are appended even when the base has them",
           'mapped = dst.add_str(src.str_at(off) or b"")', 'mapped = dst.add_str(src.str_at(off) or b"", dedup=False)',
           bytes_only=True),
    # --- relocate ---------------------------------------------------------------------------------
    Mutant("R01-fwd-kflag-ignored", "relocate", "a distilled FWD matches a base FWD of the other kflag",
           "return dt.kflag == bt.kflag", "return True"),
    Mutant("R02-fwd-candidate-rule", "relocate", "a distilled FWD matches any base struct or union (Q1 rule lost)",
           "lib = bt.kflag == (bk == Kind.UNION)", "lib = True"),
    Mutant("R03-int-encoding-ignored", "relocate", "a distilled INT matches a base INT of another encoding",
           "return bk == Kind.INT and bt.int_encoding == dt.int_encoding", "return bk == Kind.INT"),
    Mutant("R04-enum64-not-matched", "relocate", "a distilled ENUM does not match a base ENUM64",
           "return bk in _ENUMS", "return bk == Kind.ENUM"),
    Mutant("R05-embedded-size-check-dropped", "relocate", "an embedded composite matches a base one of another size",
           "size_ok = not embedded or bt.size == dt.size", "size_ok = True"),
    Mutant("R06-q2-corrected", "relocate", "a distilled STRUCT no longer matches a base UNION (Q2 'fixed')",
           'run.choose(Q2, size_ok, size_ok and bk == dk,', 'run.choose(Q2, size_ok and bk == dk, size_ok and '
           'bk == dk,'),
    Mutant("R07-duplicate-candidate-accepted", "relocate", "two compatible base candidates: the last one wins",
           "if prev and prev != BTF_IS_EMBEDDED:", "if False:"),
    Mutant("R08-unmapped-errno", "relocate", "an unmapped distilled type fails with -ENOENT, not -EINVAL",
           """raise run.fail(EINVAL, f"distilled base BTF type '{dist.name(dist.type(i))}' [{i}] is not \"""",
           """raise run.fail(ENOENT, f"distilled base BTF type '{dist.name(dist.type(i))}' [{i}] is not \""""),
    Mutant("R09-unmapped-string-errno", "relocate", "an unmapped string fails with -EINVAL, not -ENOENT",
           """raise run.fail(ENOENT, f"string '{shown}'""", """raise run.fail(EINVAL, f"string '{shown}'"""),
    Mutant("R10-split-string-boundary", "relocate", "the first split string is looked up as a distilled one",
           "if s >= dist_str_len:", "if s > dist_str_len:"),
    Mutant("R11-first-split-id-unmapped", "relocate", "the first split type's id is not renumbered",
           "for i in range(nr_dist, nr_types):\n        id_map[i] = (i + nr_base - nr_dist) & U32",
           "for i in range(nr_dist + 1, nr_types):\n        id_map[i] = (i + nr_base - nr_dist) & U32"),
    Mutant("R12-array-embedding-missed", "relocate", "a base struct embedded through an array is not size-checked",
           "if c.kind in MODIFIER_KINDS or c.kind == Kind.ARRAY:", "if c.kind in MODIFIER_KINDS:"),
    Mutant("R13-q4-keyed-by-name", "relocate", "composites keyed by size when their names (not offsets) repeat",
           "sized_lib, sized_ok = by_off[name_off] > 1, by_name[name] > 1",
           "sized_lib, sized_ok = by_name[name] > 1, by_name[name] > 1"),
    Mutant("R14-embedded-unmapped-accepted", "relocate", "an embedded distilled composite missing from the base "
           "is not an error", "if id_map[i] in (0, BTF_IS_EMBEDDED):", "if id_map[i] == 0:"),
    Mutant("R15-typedef-embedding-missed", "relocate", "a base struct embedded through a typedef is not "
           "size-checked", "if c.kind in MODIFIER_KINDS or c.kind == Kind.ARRAY:",
           "if (c.kind in MODIFIER_KINDS and c.kind != Kind.TYPEDEF) or c.kind == Kind.ARRAY:"),
    Mutant("R16-qualifier-embedding-missed", "relocate", "a base struct embedded through const/volatile is not "
           "size-checked", "if c.kind in MODIFIER_KINDS or c.kind == Kind.ARRAY:",
           "if c.kind in (Kind.TYPEDEF, Kind.TYPE_TAG, Kind.ARRAY):"),
)

BY_ID: dict[str, Mutant] = {m.id: m for m in MUTANTS}


class MutantError(ValueError):
    """A mutant that does not apply (its ``old`` text is missing or not unique)."""


def reference_source() -> str:
    """The source text of the Python reference."""
    spec = importlib.util.find_spec(REFERENCE)
    if spec is None or spec.origin is None:
        raise MutantError(f"cannot find {REFERENCE}")
    with open(spec.origin, encoding="utf-8") as f:
        return f.read()


def mutated_source(mutant_id: str, source: str | None = None) -> str:
    """The reference's source with mutant ``mutant_id`` applied (``control``: unchanged)."""
    text = reference_source() if source is None else source
    if mutant_id == CONTROL:
        return text
    m = BY_ID.get(mutant_id)
    if m is None:
        raise MutantError(f"unknown mutant {mutant_id!r} (known: {CONTROL}, {', '.join(BY_ID)})")
    count = text.count(m.old)
    if count != 1:
        raise MutantError(f"mutant {m.id}: its text occurs {count} times in the reference (must be once)")
    return text.replace(m.old, m.new)


def load(mutant_id: str) -> types.ModuleType:
    """A fresh module compiled from the mutated copy of the reference."""
    name = f"btfspec_mutant_{mutant_id.replace('-', '_').lower()}"
    module = types.ModuleType(name)
    module.__file__ = f"<{mutant_id} of {REFERENCE}>"
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    exec(compile(mutated_source(mutant_id), module.__file__, "exec"), module.__dict__)
    return module


def main(argv: list[str] | None = None) -> int:
    """Serve one mutant on stdin/stdout (``python -m btfspec.bench.mutants ID``)."""
    from btfspec.oracle.impls.outcome import call_outcome
    from btfspec.oracle.impls.serve_reference import serve

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write(f"usage: python -m btfspec.bench.mutants ID  (ID: {CONTROL} or a mutant id)\n")
        return 2
    try:
        mod = load(args[0])
    except MutantError as exc:
        sys.stderr.write(f"btfspec.bench.mutants: {exc}\n")
        return 2

    def distill(split: bytes, base: bytes) -> Outcome:
        return call_outcome("python", lambda: mod.distill_outcome(split, base))

    def relocate(split: bytes, distilled_base: bytes, base: bytes) -> Outcome:
        return call_outcome("python", lambda: mod.relocate_outcome(split, distilled_base, base))

    return serve(distill, relocate, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
