#!/usr/bin/env python3
"""(Re)generate the corpus entries under ``corpus/selftests/`` and ``corpus/cases/``.

Inputs are built with :class:`btfspec.spec.builder.Builder` exactly as the reference notes describe them
(distill-relocate-behaviour.md §5.1-§5.9, §3); every expected outcome and output file comes from running
the real libbpf v1.6 (``LibbpfWorker``) -- nothing expected is written by hand.  While building, the
script checks libbpf against the notes:

* the Appendix A hex (A.1, and A.2 for the two corrected relocation outputs) for inputs and outputs;
* the ``VALIDATE_RAW_BTF`` text the notes quote (compared with the project's bpftool-identical dump);
* the return code the notes give for each step.

A hex or text mismatch aborts; a return-code mismatch is reported at the end (exit status 1) with the
entry still written from libbpf's actual behaviour.  ``accept`` steps record libbpf's parse verdict
and, separately, the running kernel's ``BPF_BTF_LOAD`` verdict.  When the Python reference is
importable its results are compared with libbpf through :func:`btfspec.oracle.impls.adapter.agree` and reported
(they never set an expectation).

Usage: ``python corpus/build_entries.py [--only NAME ...] [--list]``

Why one script of ~1,000 lines: one ``spec_*`` function per corpus entry, each a few lines of data
read beside the reference notes it transcribes; splitting the table would only scatter the entries.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import platform
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from btfspec.oracle.fuzz.corpus import EXTERNALS, Entry, Input, this_host, write_entry  # noqa: E402
from btfspec.oracle.impls.adapter import ImplUnavailable, KernelImpl, LibbpfImpl, PythonImpl, agree  # noqa: E402
from btfspec.oracle.impls.outcome import CRASH, ERROR, OK, TIMEOUT, Outcome  # noqa: E402
from btfspec.oracle.impls.quirks import Q17_CRASH_DEPTH  # noqa: E402
from btfspec.spec.builder import Builder  # noqa: E402
from btfspec.spec.kinds import INT_SIGNED, Kind, make_info  # noqa: E402
from btfspec.spec.model import Btf  # noqa: E402
from btfspec.spec.text import dump_raw  # noqa: E402

EINVAL, ENOENT, ELOOP = -errno.EINVAL, -errno.ENOENT, -errno.ELOOP
NOTES = "shared/reference/distill-relocate-behaviour.md"  # the reference notes (beside the project)
LIBBPF_TIMEOUT = 5.0

# --------------------------------------------------------------------------------------------------
# entry specifications
# --------------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One step to build: libbpf is run on it and its behaviour becomes the expectation."""

    name: str
    op: str
    inputs: dict[str, Input]
    notes: str | int | None = None  # what the notes state: "ok", "timeout", "crash", an errno, or None
    finding: str | None = None  # libbpf's documented finding when it times out / crashes
    default: dict[str, Any] | None = None  # the non-libbpf expectation when libbpf has a finding
    hex: dict[str, str] = field(default_factory=dict)  # output role -> Appendix A hex
    text: dict[str, list[str]] = field(default_factory=dict)  # output role -> VALIDATE_RAW_BTF lines
    check: Callable[[Outcome], str | None] | None = None  # extra check of libbpf's outcome
    accept_outputs: bool = True  # add accept steps for the outputs
    note: str = ""
    big_stack_sha256: bool = False  # record outputs as sha256 from libbpf run on a 1 GiB thread stack


@dataclass
class Spec:
    name: str
    category: str  # selftest / case
    operation: str
    summary: str
    files: dict[str, bytes]
    steps: list[Step]
    provenance: dict[str, Any]
    description: str = ""
    quirks: list[str] = field(default_factory=list)
    input_hex: dict[str, str] = field(default_factory=dict)  # file -> Appendix A hex

    @property
    def dir(self) -> Path:
        return ROOT / ("selftests" if self.category == "selftest" else "cases") / self.name


def selftest(name: str, section: str) -> dict[str, Any]:
    return {"source": "selftest", "selftest": f"tools/testing/selftests/bpf/prog_tests/btf_distill.c: {name}",
            "reference": f"distill-relocate-behaviour.md {section}"}


def case(cid: str, section: str) -> dict[str, Any]:
    return {"source": "reference", "case": cid, "reference": f"distill-relocate-behaviour.md {section}"}


def pair(build_base: Callable[[Builder], None], build_split: Callable[[Builder], None]) -> tuple[bytes, bytes]:
    """(base bytes, split bytes) from two builder callbacks."""
    b = Builder()
    build_base(b)
    s = Builder(b.btf)
    build_split(s)
    return b.to_bytes(), s.to_bytes()


def standalone(build: Callable[[Builder], None], **kw: Any) -> bytes:
    b = Builder(**kw)
    build(b)
    return b.to_bytes()


def split_on(base: bytes, build: Callable[[Builder], None]) -> bytes:
    s = Builder(Btf.from_bytes(base))
    build(s)
    return s.to_bytes()


def int_only(b: Builder) -> None:
    b.int("int", 4, INT_SIGNED)


def ptr_to(tid: int) -> Callable[[Builder], None]:
    return lambda s: s.ptr(tid)


def distill_relocate(target: str = "base.btf", *, d_notes: str | int | None = "ok",
                     r_notes: str | int | None = None, **kw: Any) -> list[Step]:
    return [Step("distill", "distill", {"split": "split.btf", "base": "base.btf"}, notes=d_notes),
            Step("relocate", "relocate", {"split": "distill.split.btf", "distilled_base": "distill.base.btf",
                                          "target": target}, notes=r_notes, **kw)]


# --- §5 selftests ------------------------------------------------------------------------------------

def distilled_base_inputs() -> tuple[bytes, bytes]:
    def base(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)                                   # 1
        b.ptr(1)                                                      # 2
        b.struct("s1", 8, [("f1", 2, 0, 0)])                          # 3
        b.struct(None, 12, [("f1", 1, 0, 0), ("f2", 3, 32, 0)])       # 4
        b.int("unsigned int", 4, 0)                                   # 5
        b.union("u1", 12, [("f1", 1, 0, 0), ("f2", 2, 0, 0)])         # 6
        b.union(None, 4, [("f1", 1, 0, 0)])                           # 7
        b.enum("e1", 4, [("v1", 1)])                                  # 8
        b.enum(None, 4, [("av1", 2)])                                 # 9
        b.enum64("e641", 8, [("v1", 1024)], signed=True)              # 10
        b.enum64(None, 8, [("v1", 1025)], signed=True)                # 11
        b.struct("unneeded", 4, [("f1", 1, 0, 0)])                    # 12
        b.struct("embedded", 4, [("f1", 1, 0, 0)])                    # 13
        b.func_proto(1, [("p1", 1)])                                  # 14
        b.array(1, 1, 3)                                              # 15
        b.struct("from_proto", 4, [("f1", 1, 0, 0)])                  # 16
        b.union("u1", 4, [("f1", 1, 0, 0)])                           # 17

    def split(s: Builder) -> None:
        s.ptr(3)                                                      # 18
        s.ptr(4)                                                      # 19
        s.const(6)                                                    # 20
        s.restrict(7)                                                 # 21
        s.volatile(8)                                                 # 22
        s.typedef("et", 9)                                            # 23
        s.const(10)                                                   # 24
        s.ptr(11)                                                     # 25
        s.struct("with_embedded", 4, [("f1", 13, 0, 0)])              # 26
        s.func("fn", 14, 0)                                           # 27
        s.typedef("arraytype", 15)                                    # 28
        s.func_proto(1, [("p1", 16)])                                 # 29

    return pair(base, split)


# The notes' data, one copy for the whole repository: Appendix A.1 with the A.2 corrected relocation
# outputs substituted, and the VALIDATE_RAW_BTF strings of §5.
DATA = ROOT.parent / "tests" / "data"
APPENDIX_A = json.loads((DATA / "appendix_a.json").read_text())["cases"]
RAW_BTF_TEXT = json.loads((DATA / "raw_btf_text.json").read_text())["cases"]
BTF1_LINES = RAW_BTF_TEXT["distilled_base"]["btf1"]
BTF4_LINES = RAW_BTF_TEXT["distilled_base"]["btf4_distilled_split"]
RELOCATED_LINES = BTF1_LINES + RAW_BTF_TEXT["distilled_base"]["relocated_split"]
E6_TEXT = RAW_BTF_TEXT["edge_E6_ordering"]["distilled_split"]


def spec_distilled_base() -> Spec:
    a = APPENDIX_A["distilled_base"]
    base, split = distilled_base_inputs()
    steps = distill_relocate(r_notes="ok")
    steps[0].hex = {"base": a["dist_base"], "split": a["dist_split"]}
    steps[0].text = {"split": BTF4_LINES}
    steps[1].hex = {"split": a["relocated_split"]}
    steps[1].text = {"split": RELOCATED_LINES}
    steps[1].note = ("Appendix A.1's relocated_split equals dist_split (stale raw data, Q13); "
                     "this is the corrected A.2 value")
    return Spec("distilled_base", "selftest", "distill+relocate",
                "the main selftest: every kind of base reference, distill then relocate onto the original base",
                {"base.btf": base, "split.btf": split}, steps, selftest("distilled_base", "§5.1"),
                description="btf1 (17 base types) and btf2 (12 split types) exactly as the selftest builds them. "
                            "Distill keeps 7 types in the new base; u1 resolves to [6] by size (two u1 at the "
                            "same string offset), e641 (distilled ENUM size 8) to ENUM64 [10].",
                input_hex={"base.btf": a["base_in"], "split.btf": a["split_in"]})


def two_ints(size2: int) -> Callable[[Builder], None]:
    def build(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.int("int", size2, INT_SIGNED)
    return build


def ptr_const(s: Builder) -> None:
    s.ptr(1)
    s.const(2)


MULTI_LINES = ["[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
               "[2] INT 'int' size=8 bits_offset=0 nr_bits=64 encoding=SIGNED",
               "[3] PTR '(anon)' type_id=1", "[4] CONST '(anon)' type_id=2"]


def spec_multi() -> Spec:
    a = APPENDIX_A["distilled_base_multi"]
    base, split = pair(two_ints(8), ptr_const)
    steps = distill_relocate(r_notes="ok")
    steps[0].hex = {"base": a["base_in"], "split": a["split_in"]}
    steps[0].text = {"split": MULTI_LINES}
    steps[1].hex = {"split": a["split_in"]}
    steps[1].text = {"split": MULTI_LINES}
    return Spec("distilled_base_multi", "selftest", "distill+relocate",
                "two INT 'int' of different sizes: both kept in the distilled base, relocation picks by size",
                {"base.btf": base, "split.btf": split}, steps, selftest("distilled_base_multi", "§5.2"),
                input_hex={"base.btf": a["base_in"], "split.btf": a["split_in"]})


def spec_missing_err() -> Spec:
    multi = APPENDIX_A["distilled_base_multi"]
    missing = APPENDIX_A["distilled_base_missing_err"]
    base, split = pair(two_ints(8), ptr_const)
    steps = distill_relocate("target.btf", r_notes=EINVAL)
    steps[0].hex = {"base": multi["base_in"], "split": multi["split_in"]}
    return Spec("distilled_base_missing_err", "selftest", "distill+relocate",
                "the distilled 8-byte int has no match in a target holding only the 4-byte int: -EINVAL",
                {"base.btf": base, "split.btf": split, "target.btf": standalone(int_only)}, steps,
                selftest("distilled_base_missing_err", "§5.3"),
                input_hex={"base.btf": multi["base_in"], "split.btf": multi["split_in"],
                           "target.btf": missing["reloc_base"]})


def spec_multi_err() -> Spec:
    multi_err = APPENDIX_A["distilled_base_multi_err"]
    multi = APPENDIX_A["distilled_base_multi"]
    base, split = pair(two_ints(4), ptr_const)
    steps = distill_relocate(r_notes=EINVAL)
    steps[0].hex = {"base": multi_err["base_in"], "split": multi["split_in"]}
    return Spec("distilled_base_multi_err", "selftest", "distill+relocate",
                "two identical INT 'int' size 4 in the base: relocation finds multiple candidates, -EINVAL",
                {"base.btf": base, "split.btf": split}, steps, selftest("distilled_base_multi_err", "§5.4"),
                input_hex={"base.btf": multi_err["base_in"], "split.btf": multi["split_in"]})


def spec_multi_err2() -> Spec:
    missing = APPENDIX_A["distilled_base_missing_err"]
    multi_err2 = APPENDIX_A["distilled_base_multi_err2"]
    multi_err = APPENDIX_A["distilled_base_multi_err"]
    base, split = pair(int_only, ptr_to(1))
    steps = distill_relocate("target.btf", r_notes=EINVAL)
    steps[0].hex = {"base": missing["reloc_base"], "split": multi_err2["split_in"]}
    return Spec("distilled_base_multi_err2", "selftest", "distill+relocate",
                "relocating onto a target with two identical INT 'int': multiple candidates, -EINVAL",
                {"base.btf": base, "split.btf": split, "target.btf": standalone(two_ints(4))}, steps,
                selftest("distilled_base_multi_err2", "§5.5"),
                input_hex={"base.btf": missing["reloc_base"], "split.btf": multi_err2["split_in"],
                           "target.btf": multi_err["base_in"]})


def spec_embedded_err() -> Spec:
    a = APPENDIX_A["distilled_base_embedded_err"]
    def base_s1(size: int) -> Callable[[Builder], None]:
        def build(b: Builder) -> None:
            b.int("int", 4, INT_SIGNED)
            b.struct("s1", size, [("f1", 1, 0, 0)])
        return build

    base, split = pair(base_s1(4), lambda s: s.struct("with_embedded", 8, [("e1", 2, 0, 0)]))
    steps = distill_relocate("target.btf", r_notes=EINVAL)
    steps[0].hex = {"base": a["dist_base"], "split": a["dist_split"]}
    steps[0].text = {"split": ["[1] STRUCT 's1' size=4 vlen=0",
                               "[2] STRUCT 'with_embedded' size=8 vlen=1\n\t'e1' type_id=1 bits_offset=0"]}
    return Spec("distilled_base_embedded_err", "selftest", "distill+relocate",
                "an embedded struct must keep its size: s1 (4) vs target s1 (8) is -EINVAL (v1.5.x returned 0)",
                {"base.btf": base, "split.btf": split, "target.btf": standalone(base_s1(8))}, steps,
                selftest("distilled_base_embedded_err", "§5.6"),
                input_hex={"base.btf": a["base_in"], "split.btf": a["split_in"],
                           "target.btf": a["reloc_base"]})


def spec_vmlinux() -> Spec:
    base: Input = {"external": "host-vmlinux"}
    split: Input = {"generate": "typedef-ptr-on-int", "base": base, "args": {"name": "myint"}}
    step = Step("distill", "distill", {"split": split, "base": base}, notes="ok",
                text={"split": ["[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
                                "[2] TYPEDEF 'myint' type_id=1", "[3] PTR '(anon)' type_id=2"]})
    prov = selftest("distilled_base_vmlinux", "§5.7")
    vml = EXTERNALS["host-vmlinux"]
    if os.access(vml, os.R_OK):
        with open(vml, "rb") as f:
            prov["host_vmlinux_sha256"] = hashlib.sha256(f.read()).hexdigest()
    return Spec("distilled_base_vmlinux", "selftest", "distill",
                "split over the host vmlinux (typedef myint -> vmlinux int, ptr -> myint) distills to 3 types",
                {}, [step], prov,
                description="The base is the host's /sys/kernel/btf/vmlinux (skipped where absent) and the split "
                            "is generated on it at replay time (its ids depend on the vmlinux). The expected "
                            "outputs do not depend on the vmlinux: any base whose INT 'int' is the usual "
                            "4-byte signed int distills to the same bytes.")


def spec_endianness() -> Spec:
    a = APPENDIX_A["distilled_endianness"]
    base = standalone(int_only, order="big")
    split = split_on(base, ptr_to(1))
    step = Step("distill", "distill", {"split": "split.btf", "base": "base.btf"}, notes="ok",
                hex={"base": a["base_in"], "split": a["split_in"]},
                text={"split": ["[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
                                "[2] PTR '(anon)' type_id=1"]})
    return Spec("distilled_endianness", "selftest", "distill",
                "a big-endian base/split distills to big-endian outputs (the kernel rejects non-native BTF)",
                {"base.btf": base, "split.btf": split}, [step], selftest("distilled_endianness", "§5.8"),
                input_hex={"base.btf": a["base_in"], "split.btf": a["split_in"]})


# --- §5.9 extra cases ---------------------------------------------------------------------------------

def relocate_to(name: str, target: str, notes: str | int | None, **kw: Any) -> Step:
    return Step(name, "relocate", {"split": "distill.split.btf", "distilled_base": "distill.base.btf",
                                   "target": target}, notes=notes, **kw)


def distill_step(notes: str | int | None = "ok", **kw: Any) -> Step:
    return Step("distill", "distill", {"split": "split.btf", "base": "base.btf"}, notes=notes, **kw)


def spec_e1() -> Spec:
    def base(b: Builder) -> None:
        b.fwd("foo")
        b.struct("foo", 4)
    b, s = pair(base, ptr_to(2))
    steps = [distill_step(text={"base": ["[1] STRUCT 'foo' size=4 vlen=0"]}),
             relocate_to("relocate", "base.btf", EINVAL)]
    return Spec("E1-fwd-and-struct-same-name", "case", "distill+relocate",
                "base FWD 'foo' + STRUCT 'foo': the distilled STRUCT matches both (Q2), multiple candidates",
                {"base.btf": b, "split.btf": s}, steps, case("E1", "§5.9 E1, §3 Q2"), quirks=["Q2"])


def spec_e2() -> Spec:
    b, s = pair(lambda b: b.fwd("u", union=True), ptr_to(1))

    def union_bitfield(t: Builder) -> None:
        t.int("int", 4, INT_SIGNED)
        t.union("u", 4, [("f", 1, 0, 3)])

    files = {"base.btf": b, "split.btf": s,
             "target-union.btf": standalone(lambda t: t.union("u", 4)),
             "target-struct.btf": standalone(lambda t: t.struct("u", 4)),
             "target-union-bitfield.btf": standalone(union_bitfield)}
    steps = [distill_step(text={"base": ["[1] FWD 'u' fwd_kind=union"]}),
             relocate_to("relocate-union", "target-union.btf", EINVAL),
             relocate_to("relocate-struct", "target-struct.btf", "ok",
                         text={"split": ["[1] STRUCT 'u' size=4 vlen=0", "[2] PTR '(anon)' type_id=1"]}),
             relocate_to("relocate-union-bitfield", "target-union-bitfield.btf", "ok")]
    return Spec("E2-union-fwd-kflag", "case", "distill+relocate",
                "a union FWD matches by the base type's kflag, not its own (Q1)",
                files, steps, case("E2", "§5.9 E2, §3 Q1"), quirks=["Q1"],
                description="Distilled FWD 'u' (union) vs a target UNION 'u' with kflag 0: -EINVAL; vs STRUCT 'u' "
                            "(kflag 0): 0, mapped to the struct; vs UNION 'u' with a bitfield member (kflag 1): 0.")


def spec_e2b() -> Spec:
    b, s = pair(lambda b: b.fwd("sf"), ptr_to(1))

    def target(t: Builder) -> None:
        t.int("int", 4, INT_SIGNED)
        t.struct("sf", 4, [("f", 1, 0, 3)])

    steps = [distill_step(text={"base": ["[1] FWD 'sf' fwd_kind=struct"]}),
             relocate_to("relocate", "target.btf", EINVAL)]
    return Spec("E2b-struct-fwd-vs-bitfield-struct", "case", "distill+relocate",
                "a struct FWD does not match a STRUCT with bitfields (kflag 1) (Q1)",
                {"base.btf": b, "split.btf": s, "target.btf": standalone(target)}, steps,
                case("E2b", "§5.9 E2b, §3 Q1"), quirks=["Q1"])


def spec_e3() -> Spec:
    b, s = pair(lambda b: b.enum64("e", 8, [("A", 1)]), ptr_to(1))
    files = {"base.btf": b, "split.btf": s,
             "target-enum8.btf": standalone(lambda t: t.enum("e", 8, [("A", 1)])),
             "target-enum4.btf": standalone(lambda t: t.enum("e", 4, [("A", 1)])),
             "target-enum64-4.btf": standalone(lambda t: t.enum64("e", 4, [("A", 1)]))}
    steps = [distill_step(text={"base": ["[1] ENUM 'e' encoding=UNSIGNED size=8 vlen=0"]}),
             relocate_to("relocate-enum64-8", "base.btf", "ok"),
             relocate_to("relocate-enum-8", "target-enum8.btf", "ok"),
             relocate_to("relocate-enum-4", "target-enum4.btf", EINVAL),
             relocate_to("relocate-enum64-4", "target-enum64-4.btf", EINVAL)]
    return Spec("E3-enum64-distilled-as-enum", "case", "distill+relocate",
                "a named ENUM64 is distilled as ENUM size 8 and matches ENUM or ENUM64 of size 8 only",
                files, steps, case("E3", "§5.9 E3, §1.2"))


def spec_e4() -> Spec:
    def base(b: Builder) -> None:
        b.struct("foo", 4)
        b.struct("foo", 8)

    b, s = pair(base, ptr_to(2))
    files = {"base.btf": b, "split.btf": s,
             "target-12-16.btf": standalone(lambda t: (t.struct("foo", 12), t.struct("foo", 16))),
             "target-12.btf": standalone(lambda t: t.struct("foo", 12))}
    steps = [distill_step(text={"base": ["[1] STRUCT 'foo' size=8 vlen=0"]}),
             relocate_to("relocate-same-base", "base.btf", "ok", text={"split": [
                 "[1] STRUCT 'foo' size=4 vlen=0", "[2] STRUCT 'foo' size=8 vlen=0", "[3] PTR '(anon)' type_id=2"]}),
             relocate_to("relocate-12-16", "target-12-16.btf", EINVAL),
             relocate_to("relocate-12", "target-12.btf", "ok")]
    return Spec("E4-duplicate-struct-names-by-size", "case", "distill+relocate",
                "two base STRUCT 'foo' (4, 8): the size decides; a single 'foo' matches any size unless embedded",
                files, steps, case("E4", "§5.9 E4"))


def spec_e6() -> Spec:
    a = APPENDIX_A["edge_E6_ordering"]
    def base(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)                 # 1
        b.struct("zz", 4, [("a", 1, 0, 0)])         # 2
        b.ptr(2)                                    # 3
        b.float("float", 4)                         # 4
        b.typedef("td", 2)                          # 5
        b.struct(None, 4, [("x", 3, 0, 0)])         # 6
        b.enum("aa", 4, [("A", 1)])                 # 7
        b.fwd("fw", union=True)                     # 8
        b.type_tag("tag", 3)                        # 9
        b.const(6)                                  # 10
        b.volatile(4)                               # 11
        b.func_proto(7, [("q", 8)])                 # 12
        b.array(1, 11, 2)                           # 13

    def split(s: Builder) -> None:
        s.typedef("zz", 13)                         # 14
        s.ptr(12)                                   # 15
        s.ptr(10)                                   # 16
        s.ptr(9)                                    # 17
        s.ptr(5)                                    # 18
        s.struct("int", 8, [("float", 1, 0, 0), ("aa", 7, 32, 0)])  # 19

    b, s = pair(base, split)
    steps = [distill_step(hex={"base": a["dist_base"], "split": a["dist_split"]}, text={"split": E6_TEXT}),
             relocate_to("relocate", "base.btf", "ok", hex={"split": a["relocated"]},
                         note="Appendix A.1's edge_E6_ordering.relocated is stale (Q13); this is the A.2 value")]
    return Spec("E6-ordering-and-strings", "case", "distill+relocate",
                "emission order (base-id order, no sorting) and string reuse between the new base and split",
                {"base.btf": b, "split.btf": s}, steps, case("E6", "§5.9 E6, §1.5, §1.7"),
                input_hex={"base.btf": a["base_in"], "split.btf": a["split_in"]})


def spec_e9() -> Spec:
    def base_var(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.var("v", 1, 1)

    def base_func(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.func("f", b.func_proto(1, [("a", 1)]), 1)

    bv, sv = pair(base_var, lambda s: s.datasec(".data", 4, [(2, 0, 4)]))
    bf, sf = pair(base_func, lambda s: s.decl_tag("tag", 3, -1))
    steps = [Step("distill-datasec-var", "distill", {"split": "split-datasec.btf", "base": "base-var.btf"},
                  notes=EINVAL),
             Step("distill-decl-tag-func", "distill", {"split": "split-decl-tag.btf", "base": "base-func.btf"},
                  notes=EINVAL)]
    return Spec("E9-unsupported-base-kinds", "case", "distill",
                "a split reaching a base VAR (through DATASEC) or FUNC (through DECL_TAG) cannot be distilled",
                {"base-var.btf": bv, "split-datasec.btf": sv, "base-func.btf": bf, "split-decl-tag.btf": sf},
                steps, case("E9", "§5.9 E9, §1.2, §1.9"))


def spec_e10() -> Spec:
    a = APPENDIX_A["edge_E10_no_base_refs"]
    b, s = pair(int_only, lambda s: s.struct("x", 0))
    steps = [distill_step(hex={"base": a["dist_base"], "split": a["dist_split"]}),
             relocate_to("relocate", "base.btf", "ok")]
    return Spec("E10-no-base-references", "case", "distill+relocate",
                "a split that references nothing in the base: empty distilled base (25 bytes), relocation works",
                {"base.btf": b, "split.btf": s}, steps, case("E10", "§5.9 E10"))


def spec_e12() -> Spec:
    def base_s1(size: int) -> Callable[[Builder], None]:
        def build(b: Builder) -> None:
            b.int("int", 4, INT_SIGNED)
            b.struct("s1", size, [("f1", 1, 0, 0)])
        return build

    base = standalone(base_s1(4))
    variants: dict[str, tuple[Callable[[Builder], None], int]] = {
        "array": (lambda s: s.struct("outer", 4, [("m", s.array(2, 1, 1), 0, 0)]), EINVAL),
        "typedef": (lambda s: s.struct("outer", 4, [("m", s.typedef("t", 2), 0, 0)]), EINVAL),
        "const": (lambda s: s.struct("outer", 4, [("m", s.const(2), 0, 0)]), EINVAL),
        "ptr": (lambda s: s.struct("outer", 8, [("m", s.ptr(2), 0, 0)]), 0),
        "proto-param": (lambda s: s.func_proto(1, [("p", 2)]), 0),
    }
    files = {"base.btf": base, "target.btf": standalone(base_s1(8))}
    steps: list[Step] = []
    for v, (build, rc) in variants.items():
        files[f"split-{v}.btf"] = split_on(base, build)
        steps.append(Step(f"distill-{v}", "distill", {"split": f"split-{v}.btf", "base": "base.btf"}, notes="ok"))
        steps.append(Step(f"relocate-{v}", "relocate", {"split": f"distill-{v}.split.btf",
                                                        "distilled_base": f"distill-{v}.base.btf",
                                                        "target": "target.btf"}, notes=rc or "ok"))
    return Spec("E12-embedded-through-wrappers", "case", "distill+relocate",
                "s1 embedded through ARRAY/TYPEDEF/CONST must keep its size (4 vs target 8: -EINVAL); "
                "through PTR or as a FUNC_PROTO parameter it need not",
                files, steps, case("E12", "§5.9 E12, §2.5"))


def q5_default() -> dict[str, Any]:
    return {"status": "error", "errno": ELOOP, "source": "Python reference (libbpf hangs)",
            "note": "a cyclic modifier chain is reported as -ELOOP instead of hanging"}


def spec_e13() -> Spec:
    def split(s: Builder) -> None:
        c = s.btf.type_cnt
        assert s.const(c) == c                       # [2] CONST -> 2
        s.struct("outer", 4, [("m", c, 0, 0)])

    b, s = pair(int_only, split)
    steps = [distill_step(),
             relocate_to("relocate", "base.btf", "timeout", finding="Q5", default=q5_default())]
    return Spec("E13-const-cycle-hangs-relocate", "case", "distill+relocate",
                "split [2] CONST -> 2 used as a member type: distill works, libbpf's relocation never ends (Q5)",
                {"base.btf": b, "split.btf": s}, steps, case("E13", "§5.9 E13, §3 Q5"), quirks=["Q5"])


def spec_q5_base_cycle() -> Spec:
    def base(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        assert b.volatile(2) == 2                    # [2] VOLATILE -> 2

    def split(s: Builder) -> None:
        s.struct("s", 4, [("m", 2, 0, 0)])
        s.ptr(1)

    b, s = pair(base, split)
    steps = [distill_step(),
             relocate_to("relocate", "base.btf", "timeout", finding="Q5", default=q5_default())]
    return Spec("Q5-base-cycle", "case", "distill+relocate",
                "a cyclic VOLATILE in the original base is copied into the new split; relocating it hangs (Q5)",
                {"base.btf": b, "split.btf": s}, steps,
                {"source": "reference", "case": "Q5 (verified example)",
                 "reference": "distill-relocate-behaviour.md §3 Q5"},
                quirks=["Q5"])


def spec_e14() -> Spec:
    def dist(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.str("extra")

    d = standalone(dist)
    s = split_on(d, lambda s: s.typedef("extra", 1))
    step = Step("relocate", "relocate", {"split": "split.btf", "distilled_base": "distilled_base.btf",
                                         "target": "target.btf"}, notes=ENOENT,
                note="libbpf rewrites the split's ids before failing on the string (Q10); only the errno is "
                     "visible bytes-out")
    return Spec("E14-unmapped-string", "case", "relocate",
                "a split name that exists only in the distilled base's strings cannot be mapped: -ENOENT (Q10)",
                {"distilled_base.btf": d, "split.btf": s, "target.btf": standalone(int_only)}, [step],
                case("E14", "§5.9 E14, §3 Q10"), quirks=["Q10"])


def spec_e15() -> Spec:
    def base(b: Builder) -> None:
        b.struct("foo", 4)
        b.struct("foo", 8)

    b = standalone(base, dedup=False)
    s = split_on(b, ptr_to(2))
    steps = [distill_step(), relocate_to("relocate", "base.btf", EINVAL)]
    return Spec("E15-name-counts-by-offset", "case", "distill+relocate",
                "two STRUCT 'foo' (4, 8) named through different string offsets each count once: "
                "multiple candidates (Q4)",
                {"base.btf": b, "split.btf": s}, steps, case("E15", "§5.9 E15, §3 Q4"), quirks=["Q4"])


def empty_name(b: Builder) -> int:
    """A string offset (non-zero) that points at an empty string."""
    return b.btf.append_raw_strings(b"\0")


def spec_e17() -> Spec:
    def with_empty(kind: str) -> Callable[[Builder], None]:
        def build(b: Builder) -> None:
            b.int("int", 4, INT_SIGNED)
            off = empty_name(b)
            if kind == "struct":
                b.struct(None, 4, [("f", 1, 0, 0)], raw_name=off)
            elif kind == "enum":
                b.enum(None, 4, [("A", 1)], raw_name=off)
            else:
                b.fwd(None, raw_name=off)
        return build

    files: dict[str, bytes] = {}
    steps: list[Step] = []
    for kind in ("struct", "enum", "fwd"):
        files[f"base-{kind}.btf"] = standalone(with_empty(kind))
        files[f"split-{kind}.btf"] = split_on(files[f"base-{kind}.btf"], ptr_to(2))
        steps.append(Step(f"distill-{kind}", "distill", {"split": f"split-{kind}.btf", "base": f"base-{kind}.btf"},
                          notes="ok"))
        steps.append(Step(f"relocate-{kind}", "relocate", {"split": f"distill-{kind}.split.btf",
                                                           "distilled_base": f"distill-{kind}.base.btf",
                                                           "target": f"base-{kind}.btf"}, notes=EINVAL))
    return Spec("E17-empty-name-at-nonzero-offset", "case", "distill+relocate",
                "STRUCT/ENUM/FWD named by an empty string at a non-zero offset: distilled anonymous, "
                "relocation rejects the distilled base (Q3)",
                files, steps, case("E17", "§5.9 E17, §3 Q3"), quirks=["Q3"])


def spec_e18() -> Spec:
    b, s = pair(lambda b: b.int(None, 4, INT_SIGNED), ptr_to(1))
    steps = [distill_step(text={"base": ["[1] INT '(anon)' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED"]}),
             relocate_to("relocate", "base.btf", EINVAL)]
    return Spec("E18-anonymous-int", "case", "distill+relocate",
                "a referenced anonymous INT is copied into the new base, which relocation then rejects (Q8)",
                {"base.btf": b, "split.btf": s}, steps, case("E18", "§5.9 E18, §3 Q8"), quirks=["Q8"])


def spec_e19() -> Spec:
    b, s = pair(lambda b: b.enum("e3", 3, [("A", 1)]), ptr_to(1))
    return Spec("E19-enum-size-3", "case", "distill",
                "a reachable named ENUM of size 3 fails distill (btf__add_enum rejects the size)",
                {"base.btf": b, "split.btf": s}, [distill_step(EINVAL)], case("E19", "§5.9 E19, §1.2"))


JUNK_PTR_INFO = make_info(Kind.PTR) | (1 << 20) | (1 << 29)


def _junk_info_kept(out: Outcome) -> str | None:
    if not out.ok:
        return None
    base = Btf.from_bytes(out.outputs["base"])
    split = Btf.from_bytes(out.outputs["split"], base=base)
    if not any(t.info == JUNK_PTR_INFO for _, t in split.own_types()):
        return f"no record with info {JUNK_PTR_INFO:#010x} in the new split"
    return None


def spec_e20() -> Spec:
    def base(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.add(Kind.PTR, 0, 1, info=JUNK_PTR_INFO)

    b, s = pair(base, ptr_to(2))
    steps = [Step("accept-base", "accept", {"btf": "base.btf"}, notes="ok",
                  note="libbpf v1.6 ignores info bits 16-23 and 29-30; the kernel rejects them"),
             distill_step(check=_junk_info_kept), relocate_to("relocate", "base.btf", None)]
    return Spec("E20-reserved-info-bits", "case", "mixed",
                "a base PTR with reserved info bits 20 and 29 parses in v1.6 and is copied verbatim (Q9)",
                {"base.btf": b, "split.btf": s}, steps, case("E20", "§5.9 E20, §3 Q9"), quirks=["Q9"])


def spec_e21() -> Spec:
    def base(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.struct(None, 4, [("f", 1, 0, 0)], raw_name=empty_name(b))

    b, s = pair(base, ptr_to(1))
    steps = [distill_step(), relocate_to("relocate", "base.btf", EINVAL)]
    return Spec("E21-unrelated-empty-named-struct", "case", "distill+relocate",
                "an unrelated target-base STRUCT named by \"\" at a non-zero offset maps to distilled id 0: "
                "-EINVAL (Q3c)",
                {"base.btf": b, "split.btf": s}, steps, case("E21", "§5.9 E21, §3 Q3"), quirks=["Q3"])


def spec_e22() -> Spec:
    def base(b: Builder) -> None:
        b.ptr(0)
        b.struct(None, 0)

    def split(s: Builder) -> None:
        s.ptr(1)
        s.ptr(2)
        s.const(4)

    b, s = pair(base, split)
    steps = [distill_step(text={"base": [], "split": ["[1] PTR '(anon)' type_id=1", "[2] PTR '(anon)' type_id=2",
                                                      "[3] CONST '(anon)' type_id=2"]}),
             relocate_to("relocate", "base.btf", None,
                         note="not stated in the notes: recorded from libbpf v1.6")]
    return Spec("E22-empty-distilled-base", "case", "distill+relocate",
                "nothing reachable belongs in the new base: the split starts at id 1 and pass 2 runs in base "
                "mode, leaving self/dangling references (Q6)",
                {"base.btf": b, "split.btf": s}, steps, case("E22", "§5.9 E22, §3 Q6"), quirks=["Q6"])


def spec_q17() -> Spec:
    base: Input = {"generate": "ptr-chain-base", "args": {"depth": Q17_CRASH_DEPTH}}
    split: Input = {"generate": "ptr-to-last", "base": base}
    step = Step("distill", "distill", {"split": split, "base": base}, notes="crash", finding="Q17",
                big_stack_sha256=True, accept_outputs=False,
                note=f"base INT 'int' + {Q17_CRASH_DEPTH} chained PTRs, split PTR -> the last one")
    return Spec("Q17-deep-chain-distill", "case", "distill",
                "distill marks base references recursively: a very deep PTR chain overflows libbpf's stack (Q17)",
                {}, [step],
                {"source": "reference", "case": "Q17", "reference": "distill-relocate-behaviour.md §3 Q17"},
                quirks=["Q17"],
                description="Inputs are generated at replay time (2.4 MB). libbpf v1.6 dies with SIGSEGV on an "
                            "8 MiB stack (ulimit -s 8192: it survives 70k levels, not 100k). The expected "
                            "outputs are the sha256 of libbpf's own result on a 1 GiB thread stack, which the "
                            "Python reference must reproduce.")


SPECS: list[Callable[[], Spec]] = [
    spec_distilled_base, spec_multi, spec_missing_err, spec_multi_err, spec_multi_err2, spec_embedded_err,
    spec_vmlinux, spec_endianness,
    spec_e1, spec_e2, spec_e2b, spec_e3, spec_e4, spec_e6, spec_e9, spec_e10, spec_e12, spec_e13, spec_q5_base_cycle,
    spec_e14, spec_e15, spec_e17, spec_e18, spec_e19, spec_e20, spec_e21, spec_e22,
    spec_q17,
]

# --------------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------------


class Builder_:
    """Runs libbpf (and the kernel, and the reference when present) over the specs."""

    def __init__(self) -> None:
        self.libbpf = LibbpfImpl(timeout=LIBBPF_TIMEOUT)
        try:
            self.kernel: KernelImpl | None = KernelImpl()
            self.kernel_why = ""
        except ImplUnavailable as exc:
            self.kernel, self.kernel_why = None, str(exc)
        self.python: list[PythonImpl] = []
        for strict in (False, True):
            try:
                self.python.append(PythonImpl(strict=strict))
            except ImplUnavailable:
                pass
        self.disagreements: list[str] = []
        self.python_report: list[str] = []

    def build(self, spec: Spec) -> None:
        files = dict(spec.files)
        for name, want in spec.input_hex.items():
            assert files[name].hex() == want, f"{spec.name}: {name} differs from Appendix A"
        steps_out: list[dict[str, Any]] = []
        for step in spec.steps:
            steps_out += self.build_step(spec, step, files)
        manifest: dict[str, Any] = {
            "format": 1, "name": spec.name, "category": spec.category, "operation": spec.operation,
            "summary": spec.summary,
        }
        if spec.description:
            manifest["description"] = spec.description
        if spec.quirks:
            manifest["quirks"] = spec.quirks
        manifest["steps"] = steps_out
        prov = dict(spec.provenance)
        prov.update({"generated_by": "corpus/build_entries.py", "libbpf": "v1.6 (pylibbpf 0.0.6)",
                     "kernel": platform.release(),
                     "reproduce": f"python corpus/build_entries.py --only {spec.name}"})
        manifest["provenance"] = prov
        write_entry(spec.dir, manifest, files, overwrite=True)

    def _resolve(self, files: dict[str, bytes], value: Input) -> bytes:
        return Entry.from_files(files).resolve(value)

    def _notes_check(self, spec: Spec, step: Step, out: Outcome) -> None:
        if step.notes is None:
            return
        got: str | int = out.status if out.status != ERROR else out.errno
        if got != step.notes:
            self.disagreements.append(f"{spec.name}/{step.name}: the notes say {step.notes}, libbpf v1.6 gives "
                                      f"{out.describe()}")

    def build_step(self, spec: Spec, step: Step, files: dict[str, bytes]) -> list[dict[str, Any]]:
        inputs = {role: self._resolve(files, v) for role, v in step.inputs.items()}
        out = self._run(self.libbpf, step.op, inputs)
        self._notes_check(spec, step, out)
        expect: dict[str, Any] = {}
        entry: dict[str, Any] = {"name": step.name, "op": step.op, "inputs": step.inputs}
        if step.note:
            entry["note"] = step.note
        accepts: list[dict[str, Any]] = []
        if out.status in (TIMEOUT, CRASH):
            assert step.finding, f"{spec.name}/{step.name}: libbpf {out.describe()} without a documented finding"
            assert step.default is not None or step.big_stack_sha256
            expect["libbpf"] = {"status": out.status, "finding": step.finding,
                                "note": f"libbpf v1.6: {out.status} ({out.detail})"}
            if step.big_stack_sha256:
                big = self._big_stack(step.op, inputs)
                assert big.ok, f"{spec.name}: libbpf on a big stack: {big.describe()}"
                expect["default"] = {"status": OK, "outputs_sha256": {
                    r: hashlib.sha256(b).hexdigest() for r, b in sorted(big.outputs.items())},
                    "source": "libbpf v1.6 run on a 1 GiB thread stack"}
            else:
                expect["default"] = dict(step.default or {})
        elif out.status == ERROR:
            assert not step.finding, f"{spec.name}/{step.name}: expected finding {step.finding}, got {out.describe()}"
            expect["default"] = {"status": ERROR, "errno": out.errno}
        else:
            assert not step.finding, f"{spec.name}/{step.name}: expected finding {step.finding}, got ok"
            exp: dict[str, Any] = {"status": OK}
            if step.op != "accept":
                outs = {}
                for role, data in sorted(out.outputs.items()):
                    fname = f"{step.name}.{role}.btf"
                    files[fname] = data
                    outs[role] = fname
                exp["outputs"] = outs
                self._check_outputs(spec, step, out, inputs)
                if step.accept_outputs:
                    accepts = self._accept_steps(step, outs, files)
            expect["default"] = exp
        if step.op == "accept":
            expect["kernel"] = self._kernel_expect(inputs["btf"], inputs.get("base"))
        self._compare_python(spec, step, inputs, out)
        strict = self._strict_expect(step, inputs, out, files)
        if strict is not None:
            expect["python-strict"] = strict
        entry["expect"] = expect
        return [entry, *accepts]

    def _check_outputs(self, spec: Spec, step: Step, out: Outcome, inputs: dict[str, bytes]) -> None:
        where = f"{spec.name}/{step.name}"
        for role, want in step.hex.items():
            assert out.outputs[role].hex() == want, f"{where}: libbpf's {role} output differs from Appendix A"
        out_base = out.outputs.get("base") if step.op == "distill" else inputs.get("target")
        for role, lines in step.text.items():
            if role == "base":
                text = dump_raw(Btf.from_bytes(out.outputs["base"]))
            else:
                text = dump_raw(Btf.from_bytes(out.outputs[role], base=Btf.from_bytes(out_base or b"")), start_id=1)
            # the selftests' btf_type_raw_dump prints ENUM64 values without bpftool's LL/ULL suffix
            text = re.sub(r"( val=-?\d+)U?LL$", r"\1", text, flags=re.M)
            want = "".join(line + "\n" for line in lines)
            assert text == want, f"{where}: libbpf's {role} output does not print as the notes say:\n{text}"
        if step.check is not None:
            problem = step.check(out)
            assert problem is None, f"{where}: {problem}"

    def _accept_steps(self, step: Step, outs: dict[str, str], files: dict[str, bytes]) -> list[dict[str, Any]]:
        split = outs["split"]
        base: Input = outs["base"] if step.op == "distill" else step.inputs["target"]
        inputs = {"btf": self._resolve(files, split), "base": self._resolve(files, base)}
        out = self._run(self.libbpf, "accept", inputs)
        default: dict[str, Any] = ({"status": OK} if out.ok else {"status": out.status, "errno": out.errno}
                                   if out.status == ERROR else {"status": out.status})
        return [{"name": f"accept-{step.name}", "op": "accept", "inputs": {"btf": split, "base": base},
                 "note": "is the output loadable? libbpf parses it as split BTF; the kernel loads it merged with "
                         "its base",
                 "expect": {"default": default, "kernel": self._kernel_expect(inputs["btf"], inputs["base"])}}]

    def _kernel_expect(self, blob: bytes, base: bytes | None) -> dict[str, Any]:
        if self.kernel is None:
            return {"skip": f"no kernel verdict recorded ({self.kernel_why})"}
        out = self.kernel.accept(blob, base)
        exp: dict[str, Any] = {"status": out.status}
        if out.status == ERROR:
            exp["errno"] = out.errno
            last = out.log.strip().splitlines()[-1] if out.log.strip() else ""
            if last:
                exp["note"] = last
        exp["source"] = f"kernel {platform.release()}"
        exp["recorded_on"] = this_host()
        return exp

    @staticmethod
    def _run(impl: Any, op: str, inputs: dict[str, bytes]) -> Outcome:
        if op == "distill":
            return impl.distill(inputs["split"], inputs["base"])
        if op == "relocate":
            return impl.relocate(inputs["split"], inputs["distilled_base"], inputs["target"])
        return impl.accept(inputs["btf"], inputs.get("base"))

    @staticmethod
    def _big_stack(op: str, inputs: dict[str, bytes]) -> Outcome:
        from btfspec.oracle.impls.libbpf import get_libbpf

        lib = get_libbpf()
        result: list[Outcome] = []
        old = threading.stack_size(1 << 30)
        try:
            if op == "distill":
                t = threading.Thread(target=lambda: result.append(lib.distill_outcome(inputs["split"], inputs["base"])))
            else:
                raise AssertionError(op)
            t.start()
            t.join()
        finally:
            threading.stack_size(old)
        return result[0]

    def _strict_expect(self, step: Step, inputs: dict[str, bytes], lib: Outcome,
                       files: dict[str, bytes]) -> dict[str, Any] | None:
        """python-strict's own expectation where it deliberately differs from libbpf (a quirk it reports)."""
        strict = next((p for p in self.python if p.strict and step.op in p.capabilities), None)
        if strict is None:
            return None
        out = self._run(strict, step.op, inputs)
        ok, _ = agree(lib, out)
        if ok:
            return None
        quirks = [q for q in out.detail.split(",") if re.fullmatch(r"Q\d+", q)]
        assert quirks, f"{step.name}: python-strict differs from libbpf without naming a quirk: {out.describe()}"
        exp: dict[str, Any] = {"status": out.status}
        if out.status == ERROR:
            exp["errno"] = out.errno
        if out.ok and step.op != "accept":
            outs = {}
            for role, data in sorted(out.outputs.items()):
                fname = f"{step.name}.strict.{role}.btf"
                files[fname] = data
                outs[role] = fname
            exp["outputs"] = outs
        exp["quirks"] = quirks
        exp["source"] = "python-strict (recorded: strict mode corrects the quirk instead of imitating libbpf)"
        last = [line for line in out.log.splitlines() if "strict:" in line]
        if last:
            exp["note"] = last[0]
        return exp

    def _compare_python(self, spec: Spec, step: Step, inputs: dict[str, bytes], lib: Outcome) -> None:
        for impl in self.python:
            if step.op not in impl.capabilities:
                continue
            out = self._run(impl, step.op, inputs)
            ok, finding = agree(lib, out)
            if not ok:
                self.python_report.append(f"{spec.name}/{step.name}: {impl.name} {out.describe()} vs libbpf "
                                          f"{lib.describe()}")
            elif finding:
                self.python_report.append(f"{spec.name}/{step.name}: {impl.name} agrees (known finding {finding})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="entry names to build (default: all)")
    ap.add_argument("--list", action="store_true", help="list the entry names and exit")
    args = ap.parse_args(argv)
    specs = [f() for f in SPECS]
    if args.list:
        for s in specs:
            print(f"{s.dir.relative_to(ROOT)}")
        return 0
    if args.only:
        unknown = set(args.only) - {s.name for s in specs}
        if unknown:
            ap.error(f"unknown entries: {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in args.only]
    b = Builder_()
    try:
        for spec in specs:
            if spec.name == "distilled_base_vmlinux" and not os.access(EXTERNALS["host-vmlinux"], os.R_OK):
                print(f"skip {spec.name}: no host vmlinux")
                continue
            b.build(spec)
            print(f"built {spec.dir.relative_to(ROOT)}")
    finally:
        b.libbpf.close()
    for line in b.python_report:
        print(f"python: {line}")
    for line in b.disagreements:
        print(f"DISAGREEMENT with {NOTES}: {line}")
    return 1 if b.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
