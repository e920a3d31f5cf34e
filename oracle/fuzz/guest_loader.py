"""P7: the kernel's module loader relocates like libbpf -- generated modules on a real vmlinux.

A case is a module's split BTF generated on top of the vmlinux of the ``kernel-vm`` guest (structs
embedding and pointing at real vmlinux types, typedefs, arrays, qualifiers, function pointers, funcs,
enums, forward declarations) and *variants* of its distilled base: the base as distilled, then up to
:data:`MAX_PERTURBED` perturbations of it (a struct resized, a type renamed to a name of another type,
a struct turned into a union, or the blob cut short). The check distills once with libbpf (python
without libbpf) and relocates every variant onto the vmlinux with libbpf, python and the guest's
module loader (``kernel-vm``: the case is sent first and the host relocates while the guest loads);
a finding is the loader's outcome (status, errno, bytes) differing from libbpf's, or python
disagreeing with libbpf (``agree``). A finding's entry carries the vmlinux as ``base.btf`` so that
libbpf and python can replay it. Several variants per distillation: generation and distillation
on the host cost about as much as a guest load, so this roughly doubles the loads per second.

The loader validates what libbpf does not (``btf_check_all_metas``, type tags), so a perturbed case
may legitimately part ways with libbpf: the finding's description names the perturbation, and the
kernel log is in the kernel-vm outcome's log.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.helpers import (
    Calls,
    corpus_step,
    op_expect,
    outcome_class,
    raise_new,
    short,
    store,
)
from btfspec.oracle.fuzz.property import GUEST_LOADER, Context, Finding, Property
from btfspec.oracle.impls.adapter import DISTILL, RELOCATE, agree, outcome_difference
from btfspec.oracle.impls.kernel_vm import IMPL, RELOCATE_GUEST, loader_messages
from btfspec.spec.builder import Builder
from btfspec.spec.errors import BtfError
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf

NAME = GUEST_LOADER
PERTURBATIONS = ("resize", "rename", "kind", "truncate")
MAX_PERTURBED = 2  # perturbed variants per case, beside the base as distilled
MAX_EMBED = 512  # bytes: larger vmlinux structs are only pointed at
_CHAIN = (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG)


@dataclass(frozen=True)
class GuestCase:
    """A generated module on the guest's vmlinux and the variants of its distilled base."""

    split: bytes
    variants: tuple[tuple[str, int], ...]  # (perturbation or "none", which type it touches modulo the candidates)
    types: int  # module types generated


@dataclass(frozen=True)
class _Pools:
    """vmlinux type ids a module may use, by role."""

    base: Btf
    embed: tuple[int, ...]  # named structs/unions small enough to embed
    point: tuple[int, ...]  # named structs/unions to point at
    scalar: tuple[int, ...]  # ints and typedefs of ints
    named_fwd: tuple[str, ...]  # struct names a module may forward-declare


@functools.cache
def _pools(vmlinux_sha: str, vmlinux: bytes) -> _Pools:
    base = Btf.from_bytes(vmlinux)
    embed, point, scalar, fwd = [], [], [], []
    for tid in range(1, base.nr_types):
        t = base.type(tid)
        if not t.name_off:
            continue
        if t.kind in (Kind.STRUCT, Kind.UNION):
            point.append(tid)
            if 0 < t.size <= MAX_EMBED:
                embed.append(tid)
            if t.kind == Kind.STRUCT and len(fwd) < 2000:
                fwd.append(base.str_at(t.name_off))
        elif t.kind == Kind.INT or (t.kind == Kind.TYPEDEF and base.type(t.type).kind == Kind.INT):
            scalar.append(tid)
    return _Pools(base, tuple(embed), tuple(point), tuple(scalar), tuple(fwd))


def natural_size(btf: Btf, tid: int) -> int:
    """Byte size of a type as C lays it out (through typedefs and qualifiers; pointers are 8 bytes)."""
    t = btf.type(tid)
    while t.kind in _CHAIN:
        t = btf.type(t.type)
    if t.kind in (Kind.PTR, Kind.FUNC_PROTO):
        return 8
    if t.kind == Kind.ARRAY:
        return t.fixed[2] * natural_size(btf, t.fixed[0])
    return t.size


def _layout(b: Builder, fields: list[tuple[str, int]]) -> tuple[int, list[tuple[str | None, int, int, int]]]:
    members: list[tuple[str | None, int, int, int]] = []
    off = 0
    for name, tid in fields:
        size = max(natural_size(b.btf, tid), 1)
        align = min(size, 8)
        off = (off + align - 1) // align * align
        members.append((name, tid, off * 8, 0))
        off += size
    return (off + 7) // 8 * 8, members


@st.composite
def _module(draw: Any, pools: _Pools) -> tuple[bytes, int]:
    """A module's split on the pools' vmlinux: (raw split, number of types)."""
    b = Builder(pools.base)

    def pick(items: tuple[Any, ...] | list[Any]) -> st.SearchStrategy[Any]:
        # an index, not st.sampled_from: hypothesis labels a sampled_from by hashing all its elements,
        # and the vmlinux pools hold tens of thousands (that cost more than the guest's load)
        return st.integers(0, len(items) - 1).map(items.__getitem__)

    own: list[int] = []
    for k in range(draw(st.integers(1, 6))):
        fields: list[tuple[str, int]] = []
        for j in range(draw(st.integers(1, 5))):
            shape = draw(st.sampled_from(("embed", "ptr", "scalar", "array", "const", "fnptr", "tagged", "own",
                                          "fwd")))
            if shape == "embed":
                tid = draw(pick(pools.embed))
            elif shape == "ptr":
                tid = b.ptr(draw(pick(pools.point)))
            elif shape == "scalar":
                tid = draw(pick(pools.scalar))
            elif shape == "array":
                tid = b.array(draw(pick(pools.scalar + pools.embed[:50])), draw(pick(pools.scalar)),
                              draw(st.integers(1, 8)))
            elif shape == "const":
                tid = b.ptr(b.const(b.volatile(draw(pick(pools.point)))))
            elif shape == "fnptr":
                proto = b.func_proto(draw(pick(pools.scalar)), [("a", b.ptr(draw(pick(pools.point)))),
                                                                ("b", draw(pick(pools.scalar)))])
                tid = b.ptr(proto)
            elif shape == "tagged":
                tid = b.ptr(b.type_tag("user", draw(pick(pools.point))))
            elif shape == "own" and own:
                tid = b.ptr(draw(pick(own)))
            else:
                tid = b.ptr(b.fwd(draw(pick(pools.named_fwd))))
            fields.append((f"f{j}", tid))
        size, members = _layout(b, fields)
        sid = b.struct(f"btfspec_obj{k}", size, members)
        own.append(sid)
        if draw(st.booleans()):
            b.typedef(f"btfspec_obj{k}_t", sid)
        proto = b.func_proto(draw(pick(pools.scalar)), [("obj", b.ptr(sid)), ("x", draw(pick(pools.embed)))])
        b.func(f"btfspec_fn{k}", proto, 1)
    if draw(st.booleans()):
        b.enum("btfspec_state", 4, [("BTFSPEC_A", 0), ("BTFSPEC_B", draw(st.integers(1, 1 << 20)))])
    if draw(st.booleans()):
        b.typedef("btfspec_word_t", draw(pick(pools.scalar)))
    return b.to_bytes(), b.btf.nr_types


def _vm(ctx: Context) -> Any:
    for impl in ctx.impls.values():
        if RELOCATE_GUEST in impl.capabilities:
            return impl
    return None


def _cases(ctx: Context) -> st.SearchStrategy[GuestCase]:
    vm = _vm(ctx)
    if vm is None:
        raise ValueError(f"{NAME} needs {IMPL}")
    vmlinux = vm.vmlinux
    pools = _pools(hashlib.sha256(vmlinux).hexdigest(), vmlinux)
    perturbed = st.lists(st.tuples(st.sampled_from(PERTURBATIONS), st.integers(0, 1 << 16)), max_size=MAX_PERTURBED,
                         unique=True)
    return st.builds(lambda mod, more: GuestCase(mod[0], (("none", 0), *more), mod[1]), _module(pools), perturbed)


def perturb(dist_base: bytes, how: str, pick: int) -> bytes:
    """The distilled base with one change (see the module docstring), patched in place in the blob's
    type records (no re-encoding, which would refuse some of them); unchanged when nothing fits."""
    if how == "none":
        return dist_base
    if how == "truncate":
        return dist_base[:-(1 + pick % 8)]
    btf = Btf.from_bytes(dist_base)
    comps = [i for i, t in btf.own_types() if t.kind in (Kind.STRUCT, Kind.UNION)]
    named = [i for i, t in btf.own_types() if t.name_off]
    word = struct.Struct("<I" if btf.order == "little" else ">I")
    out = bytearray(dist_base)
    if how in ("resize", "kind") and comps:
        tid = comps[pick % len(comps)]
        t, at = btf.type(tid), btf.type_offset(tid)
        if at is None:
            return dist_base
        if how == "resize":
            word.pack_into(out, at + 8, t.size_type + 8)
        else:
            word.pack_into(out, at + 4, t.info ^ ((Kind.STRUCT ^ Kind.UNION) << 24))
    elif how == "rename" and len(named) > 1:
        tid = named[pick % len(named)]
        at = btf.type_offset(tid)
        if at is None:
            return dist_base
        word.pack_into(out, at, btf.type(named[(pick + 1) % len(named)]).name_off)
    else:
        return dist_base
    return bytes(out)


def _finding(case: GuestCase, how: str, calls: Calls, vmlinux: bytes, d_split: bytes, d_base: bytes,
             at_fault: str, lib: Any, got: Any) -> Finding:
    files: dict[str, bytes] = {"base.btf": vmlinux, "split.btf": case.split}
    dsplit = store(files, "distill.split.btf", d_split)
    dbase = store(files, "distill.base.btf", d_base)
    args = (d_split, d_base, vmlinux)
    steps = [corpus_step("relocate", RELOCATE, {"split": dsplit, "distilled_base": dbase, "target": "base.btf"},
                         op_expect(calls, RELOCATE, args, files, "relocate", at_fault),
                         f"{at_fault}: {got.describe()}")]
    kernel_log = loader_messages(got.log) if at_fault == IMPL else []
    desc = (f"generated module of {case.types} types on the {IMPL} guest's vmlinux, distilled base "
            f"perturbation {how!r}. relocate: libbpf {lib.describe()}; {at_fault} "
            f"{got.describe()}. First difference: {outcome_difference(lib, got) or ''}"
            + (f". Kernel log: {' | '.join(kernel_log[-6:])}" if kernel_log else ""))
    return Finding(NAME, at_fault, f"relocate {short(got)} where libbpf {short(lib)}",
                   outcome_class(RELOCATE, lib, got), files, steps, None, desc)


def check_p7(case: GuestCase, ctx: Context) -> None:
    """P7 on one generated module (see the module docstring)."""
    vm = _vm(ctx)
    if vm is None:
        return
    calls = Calls(ctx)
    vmlinux = vm.vmlinux
    distiller = "libbpf" if ctx.get("libbpf") is not None else "python"
    d = calls.run(distiller, DISTILL, case.split, vmlinux)
    if not d.ok:
        coverage.record("note", f"{NAME}: {distiller} distill {short(d)}")
        return
    d_split = d.outputs["split"]
    done: set[bytes] = set()
    for how, pick in case.variants:
        try:
            d_base = perturb(d.outputs["base"], how, pick)
        except BtfError:
            continue
        if d_base in done:  # a perturbation that found nothing to change
            continue
        done.add(d_base)
        coverage.record("perturbation", f"{NAME} {how}")
        _check_variant(case, how, ctx, calls, vm, d_split, d_base)


def _check_variant(case: GuestCase, how: str, ctx: Context, calls: Calls, vm: Any, d_split: bytes,
                   d_base: bytes) -> None:
    """One distilled base variant: the guest loads it while libbpf and python relocate it here."""
    vmlinux = vm.vmlinux
    begin = getattr(vm, "begin_relocate", None)
    finish = begin(d_split, d_base, vmlinux) if begin else None
    lib = calls.relocate("libbpf", d_split, d_base, vmlinux) if ctx.get("libbpf") is not None else None
    py = calls.run("python", RELOCATE, d_split, d_base, vmlinux) if lib and calls.impl("python") else None
    got = finish() if finish else vm.relocate(d_split, d_base, vmlinux)
    coverage.record("errno", f"{IMPL} relocate {short(got)}")
    if lib is None:
        return
    if outcome_difference(lib, got) is not None:
        raise_new(ctx, _finding(case, how, calls, vmlinux, d_split, d_base, IMPL, lib, got))
    if py is not None and not agree(lib, py)[0]:  # the reference, selected or not
        raise_new(ctx, _finding(case, how, calls, vmlinux, d_split, d_base, "python", lib, py))


def unusable_reason(ctx: Context) -> str | None:
    """Why P7 cannot run with the selected implementations (None when it can)."""
    if _vm(ctx) is None:
        return f"needs {IMPL} (name it: --impl python,libbpf,{IMPL})"
    if ctx.get("libbpf") is None:
        return "needs libbpf (the loader is compared with it)"
    return None


PROPERTY = Property(NAME, "the kernel's module loader (kernel-vm) relocates generated modules like libbpf",
                    _cases, check_p7, frozenset({RELOCATE_GUEST}), unusable_reason)

__all__ = ["PROPERTY", "check_p7", "perturb", "unusable_reason"]
