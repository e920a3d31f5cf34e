"""Property P8 (relocation inputs): structure-aware mutation of what ``btf__relocate`` is given.

A generated base/split pair is distilled by libbpf; then one word of a type record of the distilled
base or of the distilled split is changed by an operator that aims at relocation's checks and error
paths:

* ``dist-kind`` -- a distilled base type gets a kind a distilled base may not hold (TYPEDEF, PTR,
  ARRAY, FUNC, VAR, ...);
* ``dist-anon`` -- a distilled base type loses its name (``name_off`` 0);
* ``dist-size`` -- a distilled base type's size changes (one bit flipped, the top bit included: Q7);
* ``dist-name`` -- a distilled base type's ``name_off`` points elsewhere into the distilled strings;
* ``split-str`` -- a split type's ``name_off`` points into the distilled base's strings at an offset
  no distilled type names (Q10/Q16: -ENOENT);
* ``split-id`` -- a split type's referenced id changes (a distilled id, a split id, past the end).

Every implementation besides libbpf relocates the mutated split onto the original base and must
agree with libbpf byte for byte and errno for errno, as P3 judges (:func:`oracle.fuzz.differential.judge`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from btfspec.oracle.fuzz.differential import judge
from btfspec.oracle.fuzz.differential import unusable_reason as differential_unusable
from btfspec.oracle.fuzz.helpers import Calls, case_description, corpus_step, op_expect, outcome_class, pairs, raise_new
from btfspec.oracle.fuzz.property import RELOCATION_INPUTS, Context, Finding, Property
from btfspec.oracle.impls.adapter import DISTILL, RELOCATE, outcome_difference
from btfspec.spec.errors import BtfError
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf

OPERATORS = ("dist-kind", "dist-anon", "dist-size", "dist-name", "split-str", "split-id")
FOREIGN_KINDS = (Kind.TYPEDEF, Kind.PTR, Kind.ARRAY, Kind.FUNC, Kind.VAR, Kind.CONST, Kind.ENUM64, Kind.DATASEC)
_HAS_TYPE = frozenset({Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC, Kind.VAR,
                       Kind.TYPE_TAG, Kind.DECL_TAG})


@dataclass(frozen=True)
class Mutation:
    """What to change: the operator and three choices it interprets (record, value, bit)."""

    operator: str
    record: int
    value: int
    bit: int


def _word_format(blob: bytes) -> str:
    return "<I" if blob[:2] == b"\x9f\xeb" else ">I"


def _set_word(blob: bytes, pos: int, value: int) -> bytes:
    out = bytearray(blob)
    struct.pack_into(_word_format(blob), out, pos, value & 0xFFFFFFFF)
    return bytes(out)


def _get_word(blob: bytes, pos: int) -> int:
    return int(struct.unpack_from(_word_format(blob), blob, pos)[0])


def mutate(m: Mutation, dist: bytes, split: bytes) -> tuple[bytes, bytes, str] | None:
    """``(distilled base, split, description)`` after ``m``, or None when it does not apply here."""
    try:
        d = Btf.from_bytes(dist)
        s = Btf.from_bytes(split, base=d)
    except BtfError:
        return None
    on_dist = m.operator.startswith("dist-")
    btf = d if on_dist else s
    ids = list(range(btf.start_id, btf.type_cnt))
    if m.operator == "split-id":
        ids = [i for i in ids if btf.type(i).kind in _HAS_TYPE]
    if not ids:
        return None
    tid = ids[m.record % len(ids)]
    pos = btf.type_offset(tid)
    if pos is None:
        return None
    blob = dist if on_dist else split
    t = btf.type(tid)
    if m.operator == "dist-kind":
        kind = FOREIGN_KINDS[m.value % len(FOREIGN_KINDS)]
        info = (_get_word(blob, pos + 4) & ~(0x1F << 24)) | (int(kind) << 24)
        blob, what = _set_word(blob, pos + 4, info), f"type [{tid}] kind {Kind(t.kind).name} -> {kind.name}"
    elif m.operator == "dist-anon":
        blob, what = _set_word(blob, pos, 0), f"type [{tid}] name_off {t.name_off} -> 0"
    elif m.operator == "dist-size":
        size = _get_word(blob, pos + 8) ^ (1 << (m.bit % 32))
        blob, what = _set_word(blob, pos + 8, size), f"type [{tid}] size {t.size} -> {size}"
    elif m.operator == "dist-name":
        off = 1 + m.value % max(1, d.str_len - 1)
        blob, what = _set_word(blob, pos, off), f"type [{tid}] name_off {t.name_off} -> {off}"
    elif m.operator == "split-str":
        off = 1 + m.value % max(1, d.str_len - 1)
        blob, what = _set_word(blob, pos, off), f"split type [{tid}] name_off {t.name_off} -> {off} (distilled strings)"
    else:  # split-id
        target = m.value % (s.type_cnt + 3)
        blob, what = _set_word(blob, pos + 8, target), f"split type [{tid}] type {_get_word(blob, pos + 8)} -> {target}"
    return (blob, split, what) if on_dist else (dist, blob, what)


@dataclass(frozen=True)
class RelocationInput:
    """A P8 case: the generated pair and the mutation of libbpf's distilled outputs."""

    case: Any
    mutation: Mutation


def _cases(ctx: Context) -> st.SearchStrategy[RelocationInput]:
    choice = st.integers(0, (1 << 16) - 1)
    mutations = st.builds(Mutation, st.sampled_from(OPERATORS), choice, choice, st.integers(0, 31))
    return st.builds(RelocationInput, pairs(ctx), mutations)


def check_p8(c: RelocationInput, ctx: Context) -> None:
    """P8 on one case (see the module docstring)."""
    if ctx.get("libbpf") is None:
        return
    calls = Calls(ctx)
    case = c.case
    lib_d = calls.run("libbpf", DISTILL, case.split, case.base)
    if not lib_d.ok:
        return
    mutated = mutate(c.mutation, lib_d.outputs["base"], lib_d.outputs["split"])
    if mutated is None:
        return
    dist, split, what = mutated
    args = (split, dist, case.base)
    lib_r = calls.relocate("libbpf", *args)
    for name, impl in ctx.impls.items():
        if name in ("libbpf", "kernel") or RELOCATE not in impl.capabilities:
            continue
        got = calls.run(name, RELOCATE, *args)
        why = judge(name, lib_r, got, lambda: calls.run("python", RELOCATE, *args))
        if why:
            raise_new(ctx, _finding(c, calls, name, what, args, lib_r, got, why))


def _finding(c: RelocationInput, calls: Calls, name: str, what: str, args: tuple[bytes, bytes, bytes],
             lib: Any, got: Any, why: str) -> Finding:
    files = {"base.btf": c.case.base, "distill.split.btf": args[0], "distill.base.btf": args[1]}
    inputs = {"split": "distill.split.btf", "distilled_base": "distill.base.btf", "target": "base.btf"}
    steps = [corpus_step("relocate", RELOCATE, inputs, op_expect(calls, RELOCATE, args, files, "relocate", name),
                         f"{name}: {got.describe()}; input mutation {c.mutation.operator}: {what}")]
    quirks = calls.strict_quirks(RELOCATE, *args)
    desc = (f"{case_description(c.case)}; libbpf's distilled outputs with {c.mutation.operator}: {what}. relocate: "
            f"libbpf {lib.describe()}; {name} {got.describe()}. First difference: "
            f"{outcome_difference(lib, got) or ''}")
    return Finding(RELOCATION_INPUTS, name, f"relocate {why} ({c.mutation.operator})",
                   outcome_class(RELOCATE, lib, got), files, steps, ",".join(quirks) or None, desc)


PROPERTY = Property(RELOCATION_INPUTS, "relocation inputs: mutated distilled outputs relocate as libbpf relocates "
                                       "them", _cases, check_p8, frozenset({RELOCATE}), differential_unusable)

__all__ = ["OPERATORS", "PROPERTY", "Mutation", "check_p8", "mutate"]
