"""The kernel's BTF verifier (6.18, verified against ``BPF_BTF_LOAD``; reference §4.4): the ``kernel``
rule set of :func:`btfspec.spec.validate.validate`.

``btf_parse_hdr`` (native byte order, version, flags, zero header tail, sections tiling the data),
``btf_parse_str_sec``, the per-kind ``check_meta`` rules (:mod:`btfspec.spec.validate_kernel_meta`) and
``btf_check_type_tags``.  A standalone blob (no base) is checked as ``BPF_BTF_LOAD`` sees it,
including the resolve pass (:mod:`btfspec.spec.validate_kernel_resolve`); with a base it is checked like
module BTF (``btf_parse_module``: no resolve pass).

Under ``kernel-7.1`` (:mod:`btfspec.spec.formats`) ``struct btf_header`` is 32 bytes: the tail that must
be zero starts at 32, ``min(hdr_len, 32)`` bytes are copied, ``btf_check_sec_info`` tiles the layout
section too (when ``hdr_len`` >= 32 and ``layout_len`` != 0), the string section need not be last
(``hdr_len`` >= 32), and ``btf_parse_layout_sec`` checks the layout section after the strings.

Structure comes from the model: the header is decoded here with the kernel's semantics, re-packed as
a canonical 24-byte header in front of the original sections and parsed by ``Btf.from_bytes``.
"""

from __future__ import annotations

import functools

from btfspec.spec.errors import BtfError
from btfspec.spec.fastpath import NATIVE, Header, pack_header
from btfspec.spec.formats import RuleSet, rule_set
from btfspec.spec.kinds import BTF_MAGIC, BTF_MAX_TYPE, HDR_LEN, LAYOUT_ENTRY_SIZE, Kind, kind_name
from btfspec.spec.model import Btf, BtfType, s32
from btfspec.spec.validate_common import (
    E2BIG,
    EINVAL,
    ELOOP,
    ENOTSUPP,
    MODIFIERS,
    U32,
    VOID,
    Checker,
    Reject,
    Stop,
    Violation,
    hdr_fields,
    layout_fields,
    other_order,
    string_problems,
    walk_problem,
)
from btfspec.spec.validate_kernel_meta import CHECK_META, name_off_ok
from btfspec.spec.validate_kernel_resolve import Resolver

KERNEL_MAX_SIZE = 16 << 20  # BTF_MAX_SIZE: BPF_BTF_LOAD rejects larger blobs with -E2BIG
KERNEL_INFO_MASK = 0x9F00FFFF
TYPE_TAG_CHAIN_LIMIT = 32
KERNEL_6_18 = rule_set("kernel-6.18")


def violations(blob: bytes, base: bytes | Btf | None = None, limit: int | None = None,
               rules: RuleSet = KERNEL_6_18) -> list[Violation]:
    """Every violation of the kernel's rules (at most ``limit``, then a ``more`` entry)."""
    return _KernelCheck(blob, limit=limit, rules=rules).run(base)


class _KernelCheck(Checker):
    def __init__(self, blob: bytes, *, as_base: bool = False, limit: int | None = None,
                 rules: RuleSet = KERNEL_6_18) -> None:
        super().__init__(blob, limit=limit)
        self.as_base = as_base  # parsed like vmlinux/.BTF.base (btf_parse_base), no resolve pass
        self.split = False
        self.rules = rules
        self.hdr_size = rules.header_size  # sizeof(struct btf_header)

    def run(self, base: bytes | Btf | None) -> list[Violation]:
        try:
            base_btf = self._base(base)
            self.split = base_btf is not None
            hdr = self._header()
            self.report(string_problems(self.blob, hdr, split=self.split, kernel=True,
                                        str_last=self.hdr_size == HDR_LEN or hdr.hdr_len < self.hdr_size))
            self._layout_section(hdr)
            self._type_section(hdr)
            btf = self._parse(hdr, base_btf)
            self._types(btf)
        except Stop:
            pass
        return self.out

    def _base(self, base: bytes | Btf | None) -> Btf | None:
        if base is None or isinstance(base, Btf):
            return base
        problems = _KernelCheck(bytes(base), as_base=True, rules=self.rules).run(None)
        if problems:
            self.base_problem(problems)
        v = _KernelCheck(bytes(base), as_base=True, rules=self.rules)
        return v._parse(v._header(), None)

    @property
    def load(self) -> bool:
        """Rules for ``BPF_BTF_LOAD`` (standalone user BTF): size limit, type-section checks, resolve pass."""
        return not self.split and not self.as_base

    # --- header --------------------------------------------------------------------------------
    def _header(self) -> Header:
        blob, n = self.blob, len(self.blob)
        if self.load and n > KERNEL_MAX_SIZE:
            self.add("hdr.size", f"{n} bytes is over the kernel's BTF size limit ({KERNEL_MAX_SIZE})",
                     errno=E2BIG)
            raise Stop
        if n < 8:
            self.add("hdr.size", f"only {n} bytes: no room for hdr_len", 0)
            raise Stop
        hdr_len = int.from_bytes(blob[4:8], NATIVE)
        if n < hdr_len:
            swapped = blob[:2] == BTF_MAGIC.to_bytes(2, other_order(NATIVE))
            hint = f" (the blob is {other_order(NATIVE)}-endian: the kernel reads native byte order only)" \
                if swapped else ""
            self.add("hdr.hdr_len", f"hdr_len {hdr_len} is larger than the data ({n} bytes){hint}", 4)
            raise Stop
        size = self.hdr_size
        if hdr_len > size:
            tail = blob[size:hdr_len]
            nz = next((i for i, c in enumerate(tail) if c), None)
            if nz is not None:
                self.add("hdr.tail", f"hdr_len {hdr_len}: header byte {size + nz} is not zero (the "
                         f"kernel knows a {size}-byte header only)", size + nz, errno=E2BIG)
                raise Stop
        raw = blob[:min(hdr_len, size)].ljust(size, b"\0")  # fields past hdr_len read as 0
        magic, version, flags, copied_len, type_off, type_len, str_off, str_len = hdr_fields(raw[:HDR_LEN], NATIVE)
        layout_off, layout_len = layout_fields(raw[HDR_LEN:HDR_LEN + 8], NATIVE) if size > HDR_LEN else (0, 0)
        short = f" (hdr_len {hdr_len}: header fields past it read as 0)" if hdr_len < HDR_LEN else ""
        if magic != BTF_MAGIC:
            swapped = magic == int.from_bytes(BTF_MAGIC.to_bytes(2, "little"), "big")
            what = "byte-swapped: the kernel accepts native byte order only" if swapped else "expected 0xeb9f"
            self.add("hdr.magic", f"bad magic {magic:#06x} ({what}){short}", 0)
            raise Stop
        if version != 1:
            self.add("hdr.version", f"unsupported version {version}{short}", 2, errno=ENOTSUPP)
        if flags:
            self.add("hdr.flags", f"unsupported flags {flags:#x}", 3, errno=ENOTSUPP)
        hdr_len = copied_len  # differs only when hdr_len < 8 (the field itself was not copied)
        if not self.split and n == hdr_len:
            self.add("hdr.no_data", "no data after the header", 4)
            raise Stop
        secs = [("type", type_off, type_len, 8), ("string", str_off, str_len, 16)]
        if hdr_len >= size > HDR_LEN and layout_len:
            secs.append(("layout", layout_off, layout_len, 24))
        self._sections(n - hdr_len, secs)
        hdr = Header(NATIVE, magic, version, flags, hdr_len, type_off, type_len, str_off, str_len)
        if size > HDR_LEN:
            hdr.layout_off, hdr.layout_len = layout_off, layout_len
        return hdr

    def _sections(self, total: int, secs: list[tuple[str, int, int, int]]) -> None:
        """``btf_check_sec_info``: the sections, sorted by ``btf_sec_info_cmp`` (offset, then length,
        as signed differences), must tile the data after the header exactly."""
        def cmp(a: tuple[str, int, int, int], b: tuple[str, int, int, int]) -> int:
            return s32((a[1] - b[1]) & U32) or s32((a[2] - b[2]) & U32)

        secs = sorted(secs, key=functools.cmp_to_key(cmp))
        end = 0
        for name, off, length, where in secs:
            if total < off:
                self.add("sec.range", f"{name} section offset {off} is past the data ({total} bytes "
                         "after the header)", where)
                raise Stop
            if end < off:
                self.add("sec.gap", f"{off - end} unused bytes before the {name} section at {off}", where)
                raise Stop
            if end > off:
                self.add("sec.overlap", f"{name} section at {off} overlaps the previous section "
                         f"(ends at {end})", where)
                raise Stop
            if total - end < length:
                self.add("sec.range", f"{name} section [{off}, +{length}) ends past the data ({total} "
                         "bytes after the header)", where + 4)
                raise Stop
            end += length
        if end != total:
            self.add("sec.trailing", f"{total - end} bytes after the last section", None)
            raise Stop

    def _layout_section(self, hdr: Header) -> None:
        """``btf_parse_layout_sec`` (kernel 7.1): only for ``hdr_len`` >= 32 and a non-empty section."""
        if hdr.hdr_len < self.hdr_size or self.hdr_size <= HDR_LEN or not hdr.layout_len:
            return
        lo, ll = hdr.layout_off or 0, hdr.layout_len
        if lo % 4:
            self.add("layout.align", f"layout section offset {lo} is not 4-byte aligned", 24)
        elif ll < LAYOUT_ENTRY_SIZE:
            self.add("layout.empty", f"layout section of {ll} bytes holds no entry", 28)
        elif ll % LAYOUT_ENTRY_SIZE:
            self.add("layout.len", f"layout section length {ll} is not a multiple of {LAYOUT_ENTRY_SIZE}", 28)
        elif hdr.hdr_len + lo + ll > len(self.blob):
            self.add("layout.range", f"layout section [{lo}, +{ll}) ends past the data", 28)
        else:
            return
        raise Stop

    def _type_section(self, hdr: Header) -> None:
        """``btf_parse_type_sec``'s own checks (BPF_BTF_LOAD only; the parser needs alignment anyway)."""
        if hdr.type_off % 4:
            self.add("sec.align", f"type section offset {hdr.type_off} is not 4-byte aligned", 8)
            raise Stop
        if self.load and hdr.type_len == 0:
            self.add("type.none", "no types (BPF_BTF_LOAD needs at least one)", 12)
            raise Stop

    # --- structure -------------------------------------------------------------------------------
    def _parse(self, hdr: Header, base: Btf | None) -> Btf:
        """Parse the sections behind a canonical 24-byte header; fatal violations on BtfError."""
        canon = Header(hdr.order, BTF_MAGIC, 1, 0, HDR_LEN, hdr.type_off, hdr.type_len, hdr.str_off,
                       hdr.str_len)
        self.delta = hdr.hdr_len - HDR_LEN
        data = pack_header(canon) + self.blob[hdr.hdr_len:]
        try:
            btf = Btf.from_bytes(data, base)
        except BtfError as exc:
            if exc.type_id is not None and exc.offset is not None:
                self._metas_before(canon, data, base, exc.offset - HDR_LEN - canon.type_off)
            self.report([walk_problem(exc, self.blob, hdr.order, self.delta)])
            raise Stop from None
        self._use_decoded(btf)
        return btf

    def _use_decoded(self, btf: Btf) -> None:
        btf.decode_all()
        self.use(btf)

    def _metas_before(self, canon: Header, data: bytes, base: Btf | None, cut: int) -> None:
        """The kernel checks each record's meta as it walks: report the records before a broken one
        first, as the kernel would (its errno may differ, e.g. -ENOTSUPP for an INT encoding)."""
        if cut <= 0:
            return
        head = Header(canon.order, BTF_MAGIC, 1, 0, HDR_LEN, canon.type_off, cut, canon.str_off, canon.str_len)
        try:
            btf = Btf.from_bytes(pack_header(head) + data[HDR_LEN:], base)
        except BtfError:
            return
        self._use_decoded(btf)
        for tid, t in btf.own_types():
            self._meta(btf, tid, t)

    # --- types -----------------------------------------------------------------------------------
    def _types(self, btf: Btf) -> None:
        if self.load and btf.nr_types >= BTF_MAX_TYPE:
            self.add("type.count", f"{btf.nr_types} types: over the kernel's limit of {BTF_MAX_TYPE - 1}",
                     errno=E2BIG)
            return
        before = len(self.out)
        for tid, t in btf.own_types():
            self._meta(btf, tid, t)
        if len(self.out) != before:
            return
        if self.load:
            try:
                Resolver(self, btf).check_all_types()
            except Reject as exc:
                self.out.append(exc.violation)
        try:
            self._type_tags(btf)
        except Reject as exc:
            self.out.append(exc.violation)

    def _meta(self, btf: Btf, tid: int, t: BtfType) -> None:
        """``btf_check_meta``: the first failing check of one type."""
        if t.info & ~KERNEL_INFO_MASK & U32:
            self.add("type.info_bits", f"reserved bits set in info {t.info:#010x} (allowed mask "
                     f"{KERNEL_INFO_MASK:#010x})", self.field(tid, t, pos=1), tid)
            return
        if not name_off_ok(btf, t.name_off):
            self.add("name.offset", f"{kind_name(t.kind)} name offset {t.name_off} is outside the strings",
                     self.field(tid, t, pos=0), tid)
            return
        problem = CHECK_META[t.kind](self, btf, tid, t)
        if problem is not None:
            rule, msg, off = problem
            errno = ENOTSUPP if rule == "int.encoding" else EINVAL  # btf_int_check_meta's -ENOTSUPP
            self.add(rule, f"{self.desc(tid, t)}: {msg}", off if off is not None else self.rec(tid), tid,
                     errno)

    def _type_tags(self, btf: Btf) -> None:
        """``btf_check_type_tags``: TYPE_TAGs come first in every modifier chain (chains <= 32)."""
        start = btf.start_id if self.split else 1
        good = start - 1
        for i in range(start, btf.type_cnt):
            t = btf.type(i)
            if t.kind not in MODIFIERS:
                continue
            in_tags = t.kind == Kind.TYPE_TAG
            limit = TYPE_TAG_CHAIN_LIMIT
            cur = i
            while t is not None and t.kind in MODIFIERS:
                if limit == 0:
                    raise Reject("type_tag.chain", f"modifier chain from [{i}] is longer than "
                                 f"{TYPE_TAG_CHAIN_LIMIT} or cyclic", i, ELOOP, self.rec(i))
                limit -= 1
                if t.kind == Kind.TYPE_TAG:
                    if not in_tags:
                        raise Reject("type_tag.order", f"in the modifier chain from [{i}], TYPE_TAG [{cur}] "
                                     "follows a non-tag modifier (type tags must come first)", i,
                                     EINVAL, self.rec(i))
                else:
                    in_tags = False
                if cur <= good:
                    break
                cur = t.type
                t = _type_by_id(btf, cur)
                if t is None:
                    raise Reject("ref.range", f"modifier chain from [{i}] reaches type {cur}, which does "
                                 "not exist", i, EINVAL, self.rec(i))
            good = i


def _type_by_id(btf: Btf, tid: int) -> BtfType | None:
    """The kernel's ``btf_type_by_id``: void for 0, None past the end."""
    if tid == 0:
        return VOID
    if tid >= btf.type_cnt:
        return None
    return btf.type(tid)
