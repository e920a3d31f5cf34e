"""Rule checks for raw BTF: what libbpf v1.6 or the kernel would reject, and where.

:func:`validate` never raises on a blob and reports every problem it can find as a
:class:`Violation` (rule id, message, byte offset, type id, errno).  Two rule sets:

``libbpf``
    Exactly libbpf v1.6's parse-time checks (``btf_parse_hdr``, ``btf_parse_str_sec``,
    ``btf_parse_type_sec``, ``btf_sanity_check``; reference §8.5): ``validate(...) == []`` iff
    ``btf__new`` (``btf__new_split`` with the base) accepts the blob.  Not checked, because libbpf
    does not: version, flags, gaps, trailing bytes, reserved ``info`` bits, FWD ``type``, FUNC_PROTO
    return ids, sizes, kflags, identifiers, cycles.

``kernel``
    The kernel's BTF verifier (6.18, verified against ``BPF_BTF_LOAD``; reference §4.4):
    ``btf_parse_hdr`` (native byte order, version, flags, zero header tail, sections tiling the data),
    ``btf_parse_str_sec``, the per-kind ``check_meta`` rules, and ``btf_check_type_tags``.  A
    standalone blob (no base) is checked as ``BPF_BTF_LOAD`` sees it, including the resolve pass
    (reference cycles, depth limit 32, sizes, members that fit, FUNC/FUNC_PROTO/DECL_TAG targets);
    with a base it is checked like module BTF (``btf_parse_module``: no resolve pass).  Measured 6.18
    behaviour that differs from older sources and from the reference table: identifiers may contain
    dots anywhere and Latin-1 letters (kernel ctype), up to 512 bytes; DATASEC names are any printable
    bytes; TYPE_TAG and DECL_TAG may set kind_flag; FUNC_PROTO return and parameter types may not be
    VAR, DATASEC or DECL_TAG.

Structure comes from the fast path (:mod:`spec.fastpath`, :class:`spec.model.Btf`): the header is
decoded here with each rule set's own semantics, re-packed as a canonical 24-byte header in front of
the original sections, and parsed by ``Btf.from_bytes``; its :class:`~spec.errors.BtfError` becomes a
violation.  Every pass is linear (the kernel's type-tag walk is bounded by 32 steps per type).
"""

from __future__ import annotations

import errno as _errno
import struct
from dataclasses import asdict, dataclass
from typing import Literal

from spec.errors import BtfError, errno_text
from spec.fastpath import NATIVE, Header, layouts, pack_header
from spec.grammar import ByteOrder
from spec.kinds import (
    BTF_MAGIC,
    BTF_MAX_NAME_OFFSET,
    BTF_MAX_TYPE,
    HDR_LEN,
    KIND_MAX,
    Kind,
    info_kind,
    kind_name,
)
from spec.model import Btf, BtfType, s32

Rules = Literal["libbpf", "kernel"]
RULES: tuple[str, ...] = ("libbpf", "kernel")

EINVAL = -_errno.EINVAL
E2BIG = -_errno.E2BIG
EEXIST = -_errno.EEXIST
ELOOP = -_errno.ELOOP
ENOTSUP = -_errno.ENOTSUP  # libc's ENOTSUP (95), what libbpf returns
ENOTSUPP = -524  # the kernel-internal ENOTSUPP returned by BPF_BTF_LOAD

LIBBPF_MAX_STR_OFFSET = 0x7FFFFFFF  # libbpf's BTF_MAX_STR_OFFSET
KERNEL_MAX_SIZE = 16 << 20  # BTF_MAX_SIZE: BPF_BTF_LOAD rejects larger blobs with -E2BIG
KERNEL_INFO_MASK = 0x9F00FFFF
KERNEL_INT_MASK = 0x0FFFFFFF
KSYM_NAME_LEN = 512
MAX_RESOLVE_DEPTH = 32
TYPE_TAG_CHAIN_LIMIT = 32
MAX_VIOLATIONS = 1000
_U32 = 0xFFFFFFFF

# The kernel's lib/ctype.c classes for bytes 0-255 (Latin-1 letters count as letters).
_K_ALPHA = frozenset([*range(65, 91), *range(97, 123), *range(192, 215), *range(216, 247), *range(248, 256)])
_K_ALNUM = _K_ALPHA | frozenset(range(48, 58))
_K_PRINT = frozenset([*range(32, 127), *range(160, 256)])
_K_IDENT_FIRST = _K_ALPHA | {ord("_"), ord(".")}  # 6.18 accepts dots in every identifier
_K_IDENT_REST = _K_ALNUM | {ord("_"), ord(".")}


@dataclass(frozen=True)
class Violation:
    """One rule a blob breaks: where (byte offset, type id), why, and the errno it would cause."""

    rule: str
    message: str
    offset: int | None = None
    type_id: int | None = None
    errno: int = EINVAL

    def location(self) -> str:
        """``type [12] at byte 0x1a4`` (either part may be missing)."""
        parts = []
        if self.type_id is not None:
            parts.append(f"type [{self.type_id}]")
        if self.offset is not None:
            parts.append(f"at byte {self.offset:#x}")
        return " ".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc + ': ' if loc else ''}{self.message} [{self.rule}, {errno_text(self.errno)}]"

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form (adds ``errno_text``)."""
        return {**asdict(self), "errno_text": errno_text(self.errno)}


def validate(blob: bytes | bytearray | memoryview, base: bytes | Btf | None = None,
             rules: Rules = "libbpf", *, limit: int | None = MAX_VIOLATIONS) -> list[Violation]:
    """Every violation of ``rules`` in ``blob`` (split on ``base`` when given); ``[]`` means valid.

    At most ``limit`` violations are listed (then one ``more`` entry says the list was cut).  Never
    raises for any blob or base content; ``rules`` must be ``"libbpf"`` or ``"kernel"``.
    """
    if rules not in RULES:
        raise ValueError(f"rules must be one of {RULES}, not {rules!r}")
    try:
        return _Validation(bytes(blob), rules, limit=limit).run(base)
    except (BtfError, ArithmeticError, LookupError, ValueError, TypeError, AssertionError, struct.error,
            RecursionError, MemoryError) as exc:  # a validator bug, never a verdict: say so
        return [Violation("internal", f"validator failure: {type(exc).__name__}: {exc}")]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def _other(order: ByteOrder) -> ByteOrder:
    return "big" if order == "little" else "little"


def _hdr_fields(raw24: bytes, order: ByteOrder) -> tuple[int, ...]:
    """(magic, version, flags, hdr_len, type_off, type_len, str_off, str_len)."""
    return struct.unpack(("<" if order == "little" else ">") + "HBBIIIII", raw24)


def _roundup_bytes(bits: int) -> int:
    return (bits >> 3) + (1 if bits & 7 else 0)


def _is_pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def _kernel_ident(s: bytes | None) -> bool:
    """``btf_name_valid_identifier`` of a 6.18 kernel (dots allowed, at most KSYM_NAME_LEN bytes)."""
    if not s or len(s) > KSYM_NAME_LEN or s[0] not in _K_IDENT_FIRST:
        return False
    return all(c in _K_IDENT_REST for c in s[1:])


def _kernel_section(s: bytes | None) -> bool:
    """``btf_name_valid_section``: non-empty, printable (kernel ctype), at most KSYM_NAME_LEN bytes."""
    return bool(s) and len(s) <= KSYM_NAME_LEN and all(c in _K_PRINT for c in s)


def _show(s: bytes | None) -> str:
    if s is None:
        return "<invalid>"
    text = s.decode("latin-1")
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


class _Strings:
    """Bounded string lookups over a BTF and its bases (never copies more than ``limit`` bytes, so
    hostile blobs with huge unterminated strings stay linear)."""

    def __init__(self, btf: Btf | None) -> None:
        self.levels: list[tuple[int, bytes]] = []
        while btf is not None:
            self.levels.append((btf.start_str_off, btf.strings))
            btf = btf.base

    def at(self, off: int, limit: int = KSYM_NAME_LEN + 1) -> bytes | None:
        """Up to ``limit`` bytes of the string at ``off`` (``None`` if the offset is outside)."""
        for start, data in self.levels:
            if off >= start:
                local = off - start
                if local >= len(data):
                    return None
                end = data.find(b"\0", local, local + limit)
                return data[local:end if end >= 0 else local + limit]
        return None


class _Stop(Exception):
    """A fatal violation: nothing after it can be checked."""


class _Reject(Exception):
    """One kernel resolve-pass failure (the pass stops at the first, like the kernel)."""

    def __init__(self, rule: str, message: str, type_id: int | None, errno: int = EINVAL,
                 offset: int | None = None) -> None:
        super().__init__(message)
        self.violation = Violation(rule, message, offset, type_id, errno)


# --------------------------------------------------------------------------------------------------
# the validation run
# --------------------------------------------------------------------------------------------------

class _Validation:
    def __init__(self, blob: bytes, rules: str, *, as_base: bool = False, limit: int | None = None) -> None:
        self.blob = blob
        self.limit = limit
        self.strs = _Strings(None)
        self.rules = rules
        self.kernel = rules == "kernel"
        self.as_base = as_base  # kernel: parsed like vmlinux/.BTF.base (btf_parse_base), no resolve pass
        self.split = False
        self.out: list[Violation] = []
        self.delta = 0  # original offset - offset in the canonical (24-byte header) blob
        self.btf: Btf | None = None

    def add(self, rule: str, message: str, offset: int | None = None, type_id: int | None = None,
            errno: int = EINVAL) -> None:
        if self.limit is not None and len(self.out) >= self.limit:
            self.out.append(Violation("more", f"more violations not listed (limit {self.limit})"))
            raise _Stop
        self.out.append(Violation(rule, message, offset, type_id, errno))

    def run(self, base: bytes | Btf | None) -> list[Violation]:
        try:
            base_btf = self._base(base)
            self.split = base_btf is not None
            hdr = self._kernel_header() if self.kernel else self._libbpf_header()
            self._strings(hdr)
            if self.kernel:
                self._kernel_type_section(hdr)
            btf = self._parse(hdr, base_btf)
            if self.kernel:
                self._kernel_types(btf)
            else:
                self._libbpf_types(btf)
        except _Stop:
            pass
        return self.out

    # --- base ----------------------------------------------------------------------------------
    def _base(self, base: bytes | Btf | None) -> Btf | None:
        if base is None or isinstance(base, Btf):
            return base
        problems = _Validation(bytes(base), self.rules, as_base=True).run(None)
        if problems:
            first = problems[0]
            self.add("base.invalid", f"the base BTF is invalid ({len(problems)} violation(s)), first: "
                     f"{first}", None, None, first.errno)
            raise _Stop
        return _canonical_btf(bytes(base), self.rules)

    @property
    def load(self) -> bool:
        """Kernel rules for ``BPF_BTF_LOAD`` (standalone user BTF): size limit, type-section checks,
        resolve pass."""
        return self.kernel and not self.split and not self.as_base

    # --- header: libbpf v1.6 -----------------------------------------------------------------------
    def _libbpf_header(self) -> Header:
        blob, n = self.blob, len(self.blob)
        if n < HDR_LEN:
            self.add("hdr.size", f"only {n} bytes: the BTF header needs {HDR_LEN}", 0)
            raise _Stop
        if blob[:2] == BTF_MAGIC.to_bytes(2, NATIVE):
            order: ByteOrder = NATIVE
        elif blob[:2] == BTF_MAGIC.to_bytes(2, _other(NATIVE)):
            order = _other(NATIVE)
        else:
            self.add("hdr.magic", f"bad magic {blob[:2].hex()} (expected 9feb or eb9f)", 0)
            raise _Stop
        magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = _hdr_fields(blob[:24], order)
        if order != NATIVE and hdr_len != HDR_LEN:
            self.add("hdr.hdr_len", f"hdr_len {hdr_len}: libbpf parses {order}-endian BTF only with a "
                     f"{HDR_LEN}-byte header", 4, errno=ENOTSUP)
            raise _Stop
        if hdr_len > n:
            self.add("hdr.hdr_len", f"hdr_len {hdr_len} is larger than the data ({n} bytes)", 4)
            raise _Stop
        body = n - hdr_len
        if str_off + str_len > body:
            self.add("sec.range", f"string section [{str_off}, +{str_len}) ends past the data "
                     f"({body} bytes after the header)", 16)
        if type_off + type_len > str_off:
            self.add("sec.layout", f"type section [{type_off}, +{type_len}) does not end before the "
                     f"string section at {str_off}", 8)
        if type_off % 4:
            self.add("sec.align", f"type section offset {type_off} is not 4-byte aligned", 8)
        if self.out:
            raise _Stop
        return Header(order, magic, version, flags, hdr_len, type_off, type_len, str_off, str_len)

    # --- header: kernel ----------------------------------------------------------------------------
    def _kernel_header(self) -> Header:
        blob, n = self.blob, len(self.blob)
        if self.load and n > KERNEL_MAX_SIZE:
            self.add("hdr.size", f"{n} bytes is over the kernel's BTF size limit ({KERNEL_MAX_SIZE})",
                     errno=E2BIG)
            raise _Stop
        if n < 8:
            self.add("hdr.size", f"only {n} bytes: no room for hdr_len", 0)
            raise _Stop
        hdr_len = int.from_bytes(blob[4:8], NATIVE)
        if n < hdr_len:
            swapped = blob[:2] == BTF_MAGIC.to_bytes(2, _other(NATIVE))
            hint = f" (the blob is {_other(NATIVE)}-endian: the kernel reads native byte order only)" \
                if swapped else ""
            self.add("hdr.hdr_len", f"hdr_len {hdr_len} is larger than the data ({n} bytes){hint}", 4)
            raise _Stop
        if hdr_len > HDR_LEN:
            tail = blob[HDR_LEN:hdr_len]
            nz = next((i for i, c in enumerate(tail) if c), None)
            if nz is not None:
                self.add("hdr.tail", f"hdr_len {hdr_len}: header byte {HDR_LEN + nz} is not zero (the "
                         f"kernel knows a {HDR_LEN}-byte header only)", HDR_LEN + nz, errno=E2BIG)
                raise _Stop
        raw = blob[:min(hdr_len, HDR_LEN)].ljust(HDR_LEN, b"\0")  # fields past hdr_len read as 0
        magic, version, flags, copied_len, type_off, type_len, str_off, str_len = _hdr_fields(raw, NATIVE)
        short = f" (hdr_len {hdr_len}: header fields past it read as 0)" if hdr_len < HDR_LEN else ""
        if magic != BTF_MAGIC:
            swapped = magic == int.from_bytes(BTF_MAGIC.to_bytes(2, "little"), "big")
            what = "byte-swapped: the kernel accepts native byte order only" if swapped else "expected 0xeb9f"
            self.add("hdr.magic", f"bad magic {magic:#06x} ({what}){short}", 0)
            raise _Stop
        if version != 1:
            self.add("hdr.version", f"unsupported version {version}{short}", 2, errno=ENOTSUPP)
        if flags:
            self.add("hdr.flags", f"unsupported flags {flags:#x}", 3, errno=ENOTSUPP)
        hdr_len = copied_len  # differs only when hdr_len < 8 (the field itself was not copied)
        if not self.split and n == hdr_len:
            self.add("hdr.no_data", "no data after the header", 4)
            raise _Stop
        self._kernel_sections(n - hdr_len, type_off, type_len, str_off, str_len)
        return Header(NATIVE, magic, version, flags, hdr_len, type_off, type_len, str_off, str_len)

    def _kernel_sections(self, total: int, type_off: int, type_len: int, str_off: int, str_len: int) -> None:
        """``btf_check_sec_info``: the two sections must tile the data after the header exactly."""
        secs = [("type", type_off, type_len, 8), ("string", str_off, str_len, 16)]
        a, b = secs
        if s32((a[1] - b[1]) & _U32) > 0 or (a[1] == b[1] and s32((a[2] - b[2]) & _U32) > 0):
            secs.reverse()
        end = 0
        for name, off, length, where in secs:
            if total < off:
                self.add("sec.range", f"{name} section offset {off} is past the data ({total} bytes "
                         "after the header)", where)
                raise _Stop
            if end < off:
                self.add("sec.gap", f"{off - end} unused bytes before the {name} section at {off}", where)
                raise _Stop
            if end > off:
                self.add("sec.overlap", f"{name} section at {off} overlaps the previous section "
                         f"(ends at {end})", where)
                raise _Stop
            if total - end < length:
                self.add("sec.range", f"{name} section [{off}, +{length}) ends past the data ({total} "
                         "bytes after the header)", where + 4)
                raise _Stop
            end += length
        if end != total:
            self.add("sec.trailing", f"{total - end} bytes after the last section", None)
            raise _Stop

    # --- strings -----------------------------------------------------------------------------------
    def _strings(self, hdr: Header) -> None:
        start = hdr.hdr_len + hdr.str_off
        n = hdr.str_len
        data = self.blob[start:start + n]
        if self.kernel and start + n != len(self.blob):
            self.add("sec.str_last", "the string section is not the last section", 16)
        if self.split and n == 0:
            return
        limit = BTF_MAX_NAME_OFFSET if self.kernel else LIBBPF_MAX_STR_OFFSET
        if n == 0:
            self.add("str.empty", "empty string section (a base BTF needs at least the empty string)", 20)
        elif n - 1 > limit:
            self.add("str.size", f"string section of {n} bytes is over the limit ({limit + 1})", 20)
        elif data[-1]:
            self.add("str.unterminated", "the string section does not end with a NUL byte", start + n - 1)
        if n and not self.split and data[0]:
            hint = "" if self.kernel else " (is this split BTF? give its base)"
            self.add("str.first_nul", f"the string section does not start with the empty string{hint}",
                     start)

    # --- structure ---------------------------------------------------------------------------------
    def _parse(self, hdr: Header, base: Btf | None) -> Btf:
        """Parse the sections behind a canonical 24-byte header; fatal violations on BtfError."""
        canon = Header(hdr.order, BTF_MAGIC, 1, 0, HDR_LEN, hdr.type_off, hdr.type_len, hdr.str_off,
                       hdr.str_len)
        self.delta = hdr.hdr_len - HDR_LEN
        data = pack_header(canon) + self.blob[hdr.hdr_len:]
        try:
            btf = Btf.from_bytes(data, base)
        except BtfError as exc:
            if self.kernel and exc.type_id is not None and exc.offset is not None:
                self._kernel_metas_before(canon, data, base, exc.offset - HDR_LEN - canon.type_off)
            self._structure_error(exc, hdr)
            raise _Stop from None
        self._use(btf)
        return btf

    def _use(self, btf: Btf) -> None:
        btf.decode_all()
        self.btf = btf
        self.strs = _Strings(btf)

    def _kernel_metas_before(self, canon: Header, data: bytes, base: Btf | None, cut: int) -> None:
        """The kernel checks each record's meta as it walks: report the records before a broken one
        first, as the kernel would (its errno may differ, e.g. -ENOTSUPP for an INT encoding)."""
        if cut <= 0:
            return
        head = Header(canon.order, BTF_MAGIC, 1, 0, HDR_LEN, canon.type_off, cut, canon.str_off, canon.str_len)
        try:
            btf = Btf.from_bytes(pack_header(head) + data[HDR_LEN:], base)
        except BtfError:
            return
        self._use(btf)
        for tid, t in btf.own_types():
            self._kernel_meta(btf, tid, t)

    def _structure_error(self, exc: BtfError, hdr: Header) -> None:
        off = None if exc.offset is None else exc.offset + self.delta
        rule = "type.truncated"
        msg = exc.message
        if off is not None and off + 8 <= len(self.blob):
            info = int.from_bytes(self.blob[off + 4:off + 8], hdr.order)
            k = info_kind(info)
            if exc.type_id is not None and (k == 0 or k > KIND_MAX):
                rule = "type.kind"
                msg = f"unsupported BTF kind {k} (info {info:#010x})"
        if exc.type_id is None:
            rule = "type.trailing"
        self.add(rule, msg, off, exc.type_id)

    def rec(self, tid: int) -> int | None:
        """Byte offset of an own type's record in the original blob."""
        assert self.btf is not None
        off = self.btf.type_offset(tid)
        return None if off is None else off + self.delta

    def field(self, tid: int, t: BtfType, *, fixed: int | None = None, elem: int | None = None,
              pos: int = 0) -> int | None:
        """Byte offset of a word: prefix word ``pos`` (0 name, 1 info, 2 size/type), a fixed word, or
        word ``pos`` of element ``elem``."""
        base = self.rec(tid)
        if base is None:
            return None
        lay = layouts().get(t.kind)
        if fixed is not None:
            return base + 12 + 4 * fixed
        if elem is not None and lay is not None:
            return base + 12 + 4 * lay.fixed_words + 4 * (elem * lay.elem_words + pos)
        return base + 4 * pos

    def desc(self, tid: int, t: BtfType) -> str:
        assert self.btf is not None
        if not t.name_off:
            return f"{kind_name(t.kind)} (anon)"
        return f"{kind_name(t.kind)} {_show(self.strs.at(t.name_off))}"

    # --- libbpf: btf_sanity_check ------------------------------------------------------------------
    def _libbpf_types(self, btf: Btf) -> None:
        cnt = btf.type_cnt

        def str_ok(off: int) -> bool:
            b: Btf | None = btf
            while b is not None and off < b.start_str_off:
                b = b.base
            return b is not None and off - b.start_str_off < b.str_len

        lays = layouts()
        for tid, t in btf.own_types():
            k = t.kind
            if not str_ok(t.name_off):
                self.add("name.offset", f"{kind_name(k)} name offset {t.name_off} is outside the strings",
                         self.field(tid, t, pos=0), tid)
            lay = lays[k]
            if lay.elem_strs:
                for j, e in enumerate(t.elems):
                    for p in lay.elem_strs:
                        if not str_ok(e[p]):
                            self.add("name.offset", f"{self.desc(tid, t)}: {_ELEM_NOUN[k]} #{j} name offset "
                                     f"{e[p]} is outside the strings", self.field(tid, t, elem=j, pos=p), tid)
            for off, label, ref in self._libbpf_refs(tid, t):
                if ref >= cnt:
                    self.add("ref.range", f"{self.desc(tid, t)}{label} references type {ref} but type_cnt "
                             f"is {cnt}", off, tid)
            if k == Kind.FUNC and t.size_type < cnt:
                target = t.size_type
                tk = btf.type(target).kind if target else 0
                if tk != Kind.FUNC_PROTO:
                    what = f"[{target}] {kind_name(tk)}" if target else "void"
                    self.add("ref.kind", f"{self.desc(tid, t)}: references {what}, not a FUNC_PROTO",
                             self.field(tid, t, pos=2), tid)

    def _libbpf_refs(self, tid: int, t: BtfType) -> list[tuple[int | None, str, int]]:
        """(byte offset, label, id) of the ids libbpf's sanity check validates."""
        k = t.kind
        if k in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.VAR,
                 Kind.DECL_TAG, Kind.TYPE_TAG, Kind.FUNC):
            return [(self.field(tid, t, pos=2), "", t.size_type)]
        if k == Kind.ARRAY:
            return [(self.field(tid, t, fixed=0), ": element type", t.fixed[0]),
                    (self.field(tid, t, fixed=1), ": index type", t.fixed[1])]
        if k in (Kind.STRUCT, Kind.UNION, Kind.FUNC_PROTO, Kind.DATASEC):
            pos = 0 if k == Kind.DATASEC else 1
            return [(self.field(tid, t, elem=j, pos=pos), ": " + self._elem_label(k, j, e), e[pos])
                    for j, e in enumerate(t.elems)]
        return []

    def _elem_label(self, k: int, j: int, e: tuple[int, ...]) -> str:
        assert self.btf is not None
        if k == Kind.DATASEC:
            return f"variable #{j}"
        name = self.strs.at(e[0]) if e[0] else None
        noun = _ELEM_NOUN[k]
        return f"{noun} {_show(name)}" if name else f"{noun} #{j}"

    # --- kernel: metas, resolve pass, type tags ----------------------------------------------------
    def _kernel_type_section(self, hdr: Header) -> None:
        """``btf_parse_type_sec``'s own checks (BPF_BTF_LOAD only; the parser needs alignment anyway)."""
        if hdr.type_off % 4:
            self.add("sec.align", f"type section offset {hdr.type_off} is not 4-byte aligned", 8)
            raise _Stop
        if self.load and hdr.type_len == 0:
            self.add("type.none", "no types (BPF_BTF_LOAD needs at least one)", 12)
            raise _Stop

    def _kernel_types(self, btf: Btf) -> None:
        if self.load and btf.nr_types >= BTF_MAX_TYPE:
            self.add("type.count", f"{btf.nr_types} types: over the kernel's limit of {BTF_MAX_TYPE - 1}",
                     errno=E2BIG)
            return
        before = len(self.out)
        for tid, t in btf.own_types():
            self._kernel_meta(btf, tid, t)
        if len(self.out) != before:
            return
        if self.load:
            try:
                _Resolver(self, btf).check_all_types()
            except _Reject as exc:
                self.out.append(exc.violation)
        try:
            self._type_tags(btf)
        except _Reject as exc:
            self.out.append(exc.violation)

    def _name_off_ok(self, btf: Btf, off: int) -> bool:
        """``btf_name_offset_valid``."""
        if off > BTF_MAX_NAME_OFFSET:
            return False
        b: Btf | None = btf
        while b is not None and off < b.start_str_off:
            b = b.base
        return b is not None and off - b.start_str_off < b.str_len

    def _kernel_meta(self, btf: Btf, tid: int, t: BtfType) -> None:
        """``btf_check_meta``: the first failing check of one type."""
        if t.info & ~KERNEL_INFO_MASK & _U32:
            self.add("type.info_bits", f"reserved bits set in info {t.info:#010x} (allowed mask "
                     f"{KERNEL_INFO_MASK:#010x})", self.field(tid, t, pos=1), tid)
            return
        if not self._name_off_ok(btf, t.name_off):
            self.add("name.offset", f"{kind_name(t.kind)} name offset {t.name_off} is outside the strings",
                     self.field(tid, t, pos=0), tid)
            return
        problem = _META[t.kind](self, btf, tid, t)
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
            if t.kind not in _MODIFIERS:
                continue
            in_tags = t.kind == Kind.TYPE_TAG
            limit = TYPE_TAG_CHAIN_LIMIT
            cur = i
            while t is not None and t.kind in _MODIFIERS:
                if limit == 0:
                    raise _Reject("type_tag.chain", f"modifier chain from [{i}] is longer than "
                                  f"{TYPE_TAG_CHAIN_LIMIT} or cyclic", i, ELOOP, self.rec(i))
                limit -= 1
                if t.kind == Kind.TYPE_TAG:
                    if not in_tags:
                        raise _Reject("type_tag.order", f"in the modifier chain from [{i}], TYPE_TAG [{cur}] "
                                      "follows a non-tag modifier (type tags must come first)", i,
                                      EINVAL, self.rec(i))
                else:
                    in_tags = False
                if cur <= good:
                    break
                cur = t.type
                t = _kernel_type(btf, cur)
                if t is None:
                    raise _Reject("ref.range", f"modifier chain from [{i}] reaches type {cur}, which does "
                                  "not exist", i, EINVAL, self.rec(i))
            good = i


_ELEM_NOUN = {Kind.STRUCT: "member", Kind.UNION: "member", Kind.ENUM: "enumerator", Kind.ENUM64: "enumerator",
              Kind.FUNC_PROTO: "parameter", Kind.DATASEC: "variable"}
_MODIFIERS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
_VOID = BtfType(0, 0, 0)


def _kernel_type(btf: Btf, tid: int) -> BtfType | None:
    """The kernel's ``btf_type_by_id``: void for 0, None past the end."""
    if tid == 0:
        return _VOID
    if tid >= btf.type_cnt:
        return None
    return btf.type(tid)


def _canonical_btf(blob: bytes, rules: str) -> Btf:
    """Parse a blob that passed validation (its header interpreted under ``rules``)."""
    v = _Validation(blob, rules, as_base=True)
    hdr = v._kernel_header() if rules == "kernel" else v._libbpf_header()
    return v._parse(hdr, None)


# --------------------------------------------------------------------------------------------------
# kernel per-kind meta checks (check_meta of every kind_ops entry); each returns (rule, msg, offset)
# --------------------------------------------------------------------------------------------------

Problem = tuple[str, str, int | None] | None


def _m_int(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    data = t.fixed[0]
    where = v.field(tid, t, fixed=0)
    if data & ~KERNEL_INT_MASK & _U32:
        return "int.data", f"int data {data:#010x} has reserved bits set", where
    bits = t.int_bits + t.int_offset
    if bits > 128:
        return "int.bits", f"bits {t.int_bits} + offset {t.int_offset} exceed 128", where
    if _roundup_bytes(bits) > t.size:
        return "int.size", f"{bits} bits do not fit in size {t.size}", where
    if t.int_encoding not in (0, 1, 2, 4):
        return "int.encoding", f"encoding {t.int_encoding:#x} is not one of none/SIGNED/CHAR/BOOL", where
    return None


def _m_ref(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    """PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG (``btf_ref_type_check_meta``)."""
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.kflag and t.kind != Kind.TYPE_TAG:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    if t.size_type > BTF_MAX_TYPE:
        return "ref.range", f"references type {t.size_type}, over the id limit {BTF_MAX_TYPE:#x}", \
            v.field(tid, t, pos=2)
    name_at = v.field(tid, t, pos=0)
    if t.kind == Kind.TYPEDEF:
        if not t.name_off or not _kernel_ident(v.strs.at(t.name_off)):
            return "name.ident", "a TYPEDEF needs a valid identifier as its name", name_at
    elif t.kind == Kind.TYPE_TAG:
        if not v.strs.at(t.name_off):
            return "name.empty", "a TYPE_TAG needs a non-empty value", name_at
    elif t.name_off:
        return "name.anon", f"a {kind_name(t.kind)} must be anonymous (name offset {t.name_off})", name_at
    return None


def _m_fwd(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.size_type:
        return "fwd.type", f"type field is {t.size_type}, must be 0", v.field(tid, t, pos=2)
    if not t.name_off or not _kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", "a FWD needs a valid identifier as its name", v.field(tid, t, pos=0)
    return None


def _m_array(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.name_off:
        return "name.anon", "an ARRAY must be anonymous", v.field(tid, t, pos=0)
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    if t.size_type:
        return "array.size", f"size field is {t.size_type}, must be 0", v.field(tid, t, pos=2)
    for i, label in ((0, "element"), (1, "index")):
        ref = t.fixed[i]
        if not ref or ref > BTF_MAX_TYPE:
            rule = "ref.void" if not ref else "ref.range"
            return rule, f"invalid {label} type {ref}", v.field(tid, t, fixed=i)
    return None


def _m_composite(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.name_off and not _kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", f"name {_show(v.strs.at(t.name_off))} is not a valid identifier", \
            v.field(tid, t, pos=0)
    is_union = t.kind == Kind.UNION
    last = 0
    for j, (name_off, mtype, moff) in enumerate(t.elems):
        where = v.field(tid, t, elem=j, pos=0)
        label = f"member #{j}"
        if not v._name_off_ok(btf, name_off):
            return "name.offset", f"{label} name offset {name_off} is outside the strings", where
        if name_off:
            name = v.strs.at(name_off)
            label = f"member {_show(name)}"
            if not _kernel_ident(name):
                return "name.ident", f"{label}: not a valid identifier", where
        if not mtype or mtype > BTF_MAX_TYPE:
            return ("ref.void" if not mtype else "ref.range"), f"{label} has invalid type {mtype}", where + 4
        off = moff & 0xFFFFFF if t.kflag else moff
        if is_union and off:
            return "member.offset", f"{label} of a union has bit offset {off}, must be 0", where + 8
        if last > off:
            return "member.order", f"{label} bit offset {off} is below the previous member's {last}", where + 8
        if _roundup_bytes(off) > t.size:
            return "member.size", f"{label} bit offset {off} is past the size {t.size}", where + 8
        last = off
    return None


def _m_enum(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.size > 8 or not _is_pow2(t.size):
        return "enum.size", f"size {t.size} is not 1, 2, 4 or 8", v.field(tid, t, pos=2)
    if t.name_off and not _kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", f"name {_show(v.strs.at(t.name_off))} is not a valid identifier", \
            v.field(tid, t, pos=0)
    for j, e in enumerate(t.elems):
        where = v.field(tid, t, elem=j, pos=0)
        if not v._name_off_ok(btf, e[0]):
            return "name.offset", f"enumerator #{j} name offset {e[0]} is outside the strings", where
        if not e[0] or not _kernel_ident(v.strs.at(e[0])):
            return "name.ident", f"enumerator #{j} name {_show(v.strs.at(e[0]))} is not a valid " \
                "identifier", where
    return None


def _m_func(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if not t.name_off or not _kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", "a FUNC needs a valid identifier as its name", v.field(tid, t, pos=0)
    if t.vlen > 1:
        return "func.linkage", f"linkage {t.vlen} is not static (0) or global (1)", v.field(tid, t, pos=1)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    return None


def _m_func_proto(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.name_off:
        return "name.anon", "a FUNC_PROTO must be anonymous", v.field(tid, t, pos=0)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    return None


def _m_var(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    if not t.name_off or not _kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", "a VAR needs a valid identifier as its name", v.field(tid, t, pos=0)
    if not t.size_type or t.size_type > BTF_MAX_TYPE:
        return ("ref.void" if not t.size_type else "ref.range"), f"invalid type {t.size_type}", \
            v.field(tid, t, pos=2)
    if t.fixed[0] not in (0, 1):
        return "var.linkage", f"linkage {t.fixed[0]} is not static (0) or global (1)", v.field(tid, t, fixed=0)
    return None


def _m_datasec(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if not t.size:
        return "datasec.size", "size must not be 0", v.field(tid, t, pos=2)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    if not t.name_off or not _kernel_section(v.strs.at(t.name_off)):
        return "name.section", "a DATASEC needs a printable section name", v.field(tid, t, pos=0)
    last_end = total = 0
    for j, (vtype, voff, vsize) in enumerate(t.elems):
        where = v.field(tid, t, elem=j, pos=0)
        if not vtype or vtype > BTF_MAX_TYPE:
            return ("ref.void" if not vtype else "ref.range"), f"variable #{j} has invalid type {vtype}", where
        if voff < last_end or voff >= t.size:
            return "datasec.offset", f"variable #{j} offset {voff} overlaps the previous one or is past " \
                f"the size {t.size}", where + 4
        if not vsize or vsize > t.size:
            return "datasec.var_size", f"variable #{j} size {vsize} is 0 or over the section size", where + 8
        last_end = voff + vsize
        if last_end > t.size:
            return "datasec.var_size", f"variable #{j} ends at {last_end}, past the size {t.size}", where + 8
        total += vsize
    if t.size < total:
        return "datasec.size", f"variables add up to {total} bytes, over the size {t.size}", v.field(tid, t, pos=2)
    return None


def _m_float(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    if t.size not in (2, 4, 8, 12, 16):
        return "float.size", f"size {t.size} is not 2, 4, 8, 12 or 16", v.field(tid, t, pos=2)
    return None


def _m_decl_tag(v: _Validation, btf: Btf, tid: int, t: BtfType) -> Problem:
    if not v.strs.at(t.name_off):
        return "name.empty", "a DECL_TAG needs a non-empty value", v.field(tid, t, pos=0)
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if s32(t.fixed[0]) < -1:
        return "decl_tag.component", f"component_idx {s32(t.fixed[0])} is below -1", v.field(tid, t, fixed=0)
    return None


_META = {
    Kind.INT: _m_int, Kind.PTR: _m_ref, Kind.ARRAY: _m_array, Kind.STRUCT: _m_composite,
    Kind.UNION: _m_composite, Kind.ENUM: _m_enum, Kind.FWD: _m_fwd, Kind.TYPEDEF: _m_ref,
    Kind.VOLATILE: _m_ref, Kind.CONST: _m_ref, Kind.RESTRICT: _m_ref, Kind.FUNC: _m_func,
    Kind.FUNC_PROTO: _m_func_proto, Kind.VAR: _m_var, Kind.DATASEC: _m_datasec, Kind.FLOAT: _m_float,
    Kind.DECL_TAG: _m_decl_tag, Kind.TYPE_TAG: _m_ref, Kind.ENUM64: _m_enum,
}


# --------------------------------------------------------------------------------------------------
# kernel resolve pass (btf_check_all_types) for standalone BTF
# --------------------------------------------------------------------------------------------------

_TBD, _PTR, _STRUCT_OR_ARRAY = 0, 1, 2
_NOT_VISITED, _VISITED, _RESOLVED = 0, 1, 2
_SIZED = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.DATASEC, Kind.FLOAT, Kind.ENUM64})
_NEEDS_RESOLVE = _MODIFIERS | {Kind.PTR, Kind.STRUCT, Kind.UNION, Kind.ARRAY, Kind.VAR, Kind.FUNC,
                               Kind.DECL_TAG, Kind.DATASEC}
_SOURCE_ONLY = frozenset({Kind.VAR, Kind.DECL_TAG, Kind.DATASEC})
_NOSIZE = frozenset({Kind.FWD, Kind.FUNC, Kind.FUNC_PROTO})  # plus void


def _int_regular(t: BtfType) -> bool:
    bits = t.int_bits
    return not (bits & 7) and not t.int_offset and _roundup_bytes(bits) in (1, 2, 4, 8, 16)


class _Resolver:
    """A port of the kernel's DFS resolver: explicit stack of at most 32, visit states, resolved ids
    and sizes; it raises :class:`_Reject` at the first failure."""

    def __init__(self, v: _Validation, btf: Btf) -> None:
        self.v = v
        self.btf = btf
        self.n = btf.type_cnt
        self.state = bytearray(self.n)
        self.rid = [0] * self.n
        self.rsize = [0] * self.n
        self.stack: list[list[int]] = []  # [type id, next member]
        self.mode = _TBD

    # --- lookups -------------------------------------------------------------------------------
    def by_id(self, tid: int) -> BtfType | None:
        if tid == 0:
            return _VOID
        return self.btf.type(tid) if tid < self.n else None

    @staticmethod
    def nosize_or_null(t: BtfType | None) -> bool:
        return t is None or t is _VOID or t.kind in _NOSIZE

    def needs_resolve(self, t: BtfType) -> bool:
        return t is not _VOID and t.kind in _NEEDS_RESOLVE

    def sink(self, t: BtfType) -> bool:
        if t is _VOID:
            return True
        k = t.kind
        if self.mode == _TBD:
            return k not in _NEEDS_RESOLVE
        if self.mode == _PTR:
            return k not in _MODIFIERS and k != Kind.PTR
        return k not in _MODIFIERS and k not in (Kind.ARRAY, Kind.STRUCT, Kind.UNION)

    def resolved(self, tid: int) -> bool:
        return self.state[tid] == _RESOLVED

    def id_size(self, tid: int) -> tuple[BtfType, int, int] | None:
        """``btf_type_id_size``: (sized type, its id, size) or None."""
        t = self.by_id(tid)
        if self.nosize_or_null(t):
            return None
        assert t is not None
        if t.kind in _SIZED:
            return t, tid, t.size
        if t.kind == Kind.ARRAY:
            return t, tid, self.rsize[tid]
        if t.kind == Kind.PTR:
            return t, tid, 8
        if t.kind not in _MODIFIERS and t.kind != Kind.VAR:
            return None
        sid = self.rid[tid]
        st = self.by_id(sid)
        if self.nosize_or_null(st):
            return None
        assert st is not None
        if st.kind in _SIZED:
            return st, sid, st.size
        if st.kind == Kind.ARRAY:
            return st, sid, self.rsize[sid]
        if st.kind == Kind.PTR:
            return st, sid, 8
        return None

    def fail(self, tid: int, rule: str, msg: str, errno: int = EINVAL) -> _Reject:
        t = self.btf.type(tid)
        return _Reject(rule, f"{self.v.desc(tid, t)}: {msg}", tid, errno, self.v.rec(tid))

    # --- stack ---------------------------------------------------------------------------------
    def push(self, t: BtfType, tid: int) -> None:
        if len(self.stack) == MAX_RESOLVE_DEPTH:
            raise _DepthOrLoop(E2BIG, tid)
        if self.state[tid] != _NOT_VISITED:
            raise _DepthOrLoop(EEXIST, tid)
        self.state[tid] = _VISITED
        self.stack.append([tid, 0])
        if self.mode == _TBD:
            if t.kind == Kind.PTR:
                self.mode = _PTR
            elif t.kind in (Kind.STRUCT, Kind.UNION, Kind.ARRAY):
                self.mode = _STRUCT_OR_ARRAY

    def pop(self, rid: int, rsize: int) -> None:
        tid = self.stack.pop()[0]
        self.rid[tid] = rid
        self.rsize[tid] = rsize & _U32
        self.state[tid] = _RESOLVED

    # --- driver --------------------------------------------------------------------------------
    def check_all_types(self) -> None:
        for tid in range(1, self.n):
            t = self.btf.type(tid)
            if self.needs_resolve(t) and not self.resolved(tid):
                self.resolve(t, tid)
            if t.kind == Kind.FUNC_PROTO:
                self.func_proto_check(tid, t)

    def resolve(self, t: BtfType, tid: int) -> None:
        self.mode = _TBD
        self.stack = []
        try:
            self.push(t, tid)
            while self.stack:
                top = self.stack[-1]
                self.step(top)
        except _DepthOrLoop as exc:
            path = " -> ".join(f"[{e[0]}]" for e in self.stack) + f" -> [{exc.tid}]"
            if exc.errno == EEXIST:
                raise self.fail(tid, "cycle", f"reference loop {path}", EEXIST) from None
            raise self.fail(tid, "resolve.depth", f"reference chain deeper than {MAX_RESOLVE_DEPTH} "
                            f"({path})", E2BIG) from None
        if not self.resolve_valid(t, tid):
            raise self.fail(tid, "resolve.state", "invalid resolve state")

    def step(self, top: list[int]) -> None:
        tid = top[0]
        t = self.btf.type(tid)
        k = t.kind
        if k in _MODIFIERS:
            self.r_modifier(tid, t)
        elif k == Kind.PTR:
            self.r_ptr(tid, t)
        elif k == Kind.VAR:
            self.r_var(tid, t)
        elif k == Kind.ARRAY:
            self.r_array(tid, t)
        elif k in (Kind.STRUCT, Kind.UNION):
            self.r_struct(top, tid, t)
        elif k == Kind.DATASEC:
            self.r_datasec(top, tid, t)
        elif k == Kind.FUNC:
            self.func_check(tid, t)
            self.pop(t.size_type, 0)
        elif k == Kind.DECL_TAG:
            self.r_decl_tag(tid, t)
        else:
            raise self.fail(tid, "resolve.kind", "cannot be resolved")

    def _next_ok(self, tid: int, nid: int) -> BtfType:
        nt = self.by_id(nid)
        if nt is None or (nt is not _VOID and nt.kind in _SOURCE_ONLY):
            what = "does not exist" if nt is None else f"is a {kind_name(nt.kind)}"
            raise self.fail(tid, "ref.range" if nt is None else "ref.kind", f"references type {nid}, which {what}")
        return nt

    def _follow_ptr(self, nid: int, nt: BtfType) -> bool:
        """After a modifier: push the pointer it resolved to if still unresolved (ptr/var resolve)."""
        if nt is not _VOID and nt.kind in _MODIFIERS:
            rid = self.rid[nid]
            rt = self.by_id(rid)
            if rt is not None and rt is not _VOID and rt.kind == Kind.PTR and not self.sink(rt) \
                    and not self.resolved(rid):
                self.push(rt, rid)
                return True
        return False

    def r_modifier(self, tid: int, t: BtfType) -> None:
        nid = t.type
        nt = self._next_ok(tid, nid)
        if not self.sink(nt) and not self.resolved(nid):
            self.push(nt, nid)
            return
        self._pop_sized_or_void(tid, nid)

    def _pop_sized_or_void(self, tid: int, nid: int) -> None:
        r = self.id_size(nid)
        if r is None:
            nt = self.by_id(nid)
            if self.resolved(nid):
                nid = self.rid[nid]
                nt = self.by_id(nid)
            if not (nt is _VOID or (nt is not None and nt.kind in (Kind.FWD, Kind.FUNC_PROTO))):
                raise self.fail(tid, "ref.size", f"references type {nid}, which has no size and is not "
                                "void, a FWD or a FUNC_PROTO")
        else:
            nid = r[1]
        self.pop(nid, 0)

    def r_ptr(self, tid: int, t: BtfType) -> None:
        nid = t.type
        nt = self._next_ok(tid, nid)
        if not self.sink(nt) and not self.resolved(nid):
            self.push(nt, nid)
            return
        if self._follow_ptr(nid, nt):
            return
        self._pop_sized_or_void(tid, nid)

    def r_var(self, tid: int, t: BtfType) -> None:
        nid = t.type
        nt = self._next_ok(tid, nid)
        if not self.sink(nt) and not self.resolved(nid):
            self.push(nt, nid)
            return
        if self._follow_ptr(nid, nt):
            return
        r = self.id_size(nid)
        if r is None:
            raise self.fail(tid, "ref.size", f"variable type {nid} has no size")
        self.pop(r[1], 0)

    def r_array(self, tid: int, t: BtfType) -> None:
        elem_id, index_id, nelems = t.fixed
        it = self.by_id(index_id)
        if self.nosize_or_null(it) or it.kind in _SOURCE_ONLY:  # type: ignore[union-attr]
            raise self.fail(tid, "array.index", f"index type {index_id} is not a sized type")
        assert it is not None
        if not self.sink(it) and not self.resolved(index_id):
            self.push(it, index_id)
            return
        r = self.id_size(index_id)
        if r is None or r[0].kind != Kind.INT or not _int_regular(r[0]):
            raise self.fail(tid, "array.index", f"index type {index_id} is not a regular INT")
        et = self.by_id(elem_id)
        if self.nosize_or_null(et) or et.kind in _SOURCE_ONLY:  # type: ignore[union-attr]
            raise self.fail(tid, "array.elem", f"element type {elem_id} is not a sized type")
        assert et is not None
        if not self.sink(et) and not self.resolved(elem_id):
            self.push(et, elem_id)
            return
        r = self.id_size(elem_id)
        if r is None:
            raise self.fail(tid, "array.elem", f"element type {elem_id} has no size")
        est, esid, esize = r
        if est.kind == Kind.INT and not _int_regular(est):
            raise self.fail(tid, "array.elem", f"element type {elem_id} is a bitfield INT")
        if nelems and esize > _U32 // nelems:
            raise self.fail(tid, "array.size", f"{nelems} elements of {esize} bytes overflow 32 bits")
        self.pop(esid, esize * nelems)

    def r_struct(self, top: list[int], tid: int, t: BtfType) -> None:
        nxt = top[1]
        if nxt:
            _, mtype, _ = t.elems[nxt - 1]
            if not self.resolved(mtype):
                raise self.fail(tid, "resolve.state", f"member #{nxt - 1} type {mtype} is unresolved")
            self.check_member(tid, t, nxt - 1, mtype, self.by_id(mtype))  # type: ignore[arg-type]
        for j in range(nxt, len(t.elems)):
            mtype = t.elems[j][1]
            mt = self.by_id(mtype)
            if self.nosize_or_null(mt) or mt.kind in _SOURCE_ONLY:  # type: ignore[union-attr]
                what = "does not exist" if mt is None else \
                    ("is void" if mt is _VOID else f"is a {kind_name(mt.kind)}")
                raise self.fail(tid, "member.type", f"{self._member(t, j)} type {mtype} {what}")
            assert mt is not None
            if not self.sink(mt) and not self.resolved(mtype):
                top[1] = j + 1
                self.push(mt, mtype)
                return
            self.check_member(tid, t, j, mtype, mt)
        self.pop(0, 0)

    def _member(self, t: BtfType, j: int) -> str:
        name_off = t.elems[j][0]
        return f"member {_show(self.v.strs.at(name_off))}" if name_off else f"member #{j}"

    def r_datasec(self, top: list[int], tid: int, t: BtfType) -> None:
        for j in range(top[1], len(t.elems)):
            vid, _, vsize = t.elems[j]
            vt = self.by_id(vid)
            if vt is None or vt is _VOID or vt.kind != Kind.VAR:
                raise self.fail(tid, "datasec.var", f"variable #{j} references type {vid}, not a VAR")
            if not self.sink(vt) and not self.resolved(vid):
                top[1] = j + 1
                self.push(vt, vid)
                return
            r = self.id_size(vt.type)
            if r is None:
                raise self.fail(tid, "datasec.var", f"variable #{j} ([{vid}]) has no sized type")
            if vsize < r[2]:
                raise self.fail(tid, "datasec.var_size", f"variable #{j} size {vsize} is smaller than its "
                                f"type's size {r[2]}")
        self.pop(0, 0)

    def r_decl_tag(self, tid: int, t: BtfType) -> None:
        nid = t.type
        nt = self.by_id(nid)
        if nt is None or nt is _VOID or nt.kind not in (Kind.FUNC, Kind.STRUCT, Kind.UNION, Kind.VAR,
                                                         Kind.TYPEDEF):
            raise self.fail(tid, "ref.kind", f"tags type {nid}, which is not a FUNC, STRUCT, UNION, VAR "
                            "or TYPEDEF")
        if not self.sink(nt) and not self.resolved(nid):
            self.push(nt, nid)
            return
        comp = s32(t.fixed[0])
        if comp != -1:
            if nt.kind in (Kind.VAR, Kind.TYPEDEF):
                raise self.fail(tid, "decl_tag.component", f"component_idx {comp} on a "
                                f"{kind_name(nt.kind)} (must be -1)")
            if nt.kind in (Kind.STRUCT, Kind.UNION):
                vlen = nt.vlen
            else:
                proto = self.by_id(nt.type)
                vlen = proto.vlen if proto is not None else 0
            if comp >= vlen:
                raise self.fail(tid, "decl_tag.component", f"component_idx {comp} is past the {vlen} "
                                "members/parameters")
        self.pop(nid, 0)

    def func_check(self, tid: int, t: BtfType) -> None:
        proto = self.by_id(t.type)
        if proto is None or proto is _VOID or proto.kind != Kind.FUNC_PROTO:
            raise self.fail(tid, "ref.kind", f"references type {t.type}, not a FUNC_PROTO")
        for j, (name_off, ptype) in enumerate(proto.elems):
            if not name_off and ptype:
                raise self.fail(tid, "func.param_name", f"parameter #{j} of FUNC_PROTO [{t.type}] has no name")

    def func_proto_check(self, tid: int, t: BtfType) -> None:
        ret = t.size_type
        if ret:
            rt = self.by_id(ret)
            if rt is None:
                raise self.fail(tid, "ref.range", f"return type {ret} does not exist")
            if rt.kind in _SOURCE_ONLY:  # 6.18 rejects VAR/DATASEC/DECL_TAG here (older kernels did not)
                raise self.fail(tid, "func_proto.return", f"return type {ret} is a {kind_name(rt.kind)}")
            if self.needs_resolve(rt) and not self.resolved(ret):
                self.resolve(rt, ret)
            if self.id_size(ret) is None:
                raise self.fail(tid, "func_proto.return", f"return type {ret} has no size")
        params = t.elems
        n = len(params)
        if n and not params[-1][1]:
            if params[-1][0]:
                raise self.fail(tid, "func_proto.vararg", "the variadic marker (last parameter, type 0) "
                                "has a name")
            n -= 1
        for j in range(n):
            name_off, ptype = params[j]
            pt = self.by_id(ptype)
            if pt is None:
                raise self.fail(tid, "ref.range", f"parameter #{j} type {ptype} does not exist")
            if pt is not _VOID and pt.kind in _SOURCE_ONLY:
                raise self.fail(tid, "func_proto.param", f"parameter #{j} type {ptype} is a {kind_name(pt.kind)}")
            if name_off and (not self.v._name_off_ok(self.btf, name_off)
                             or not _kernel_ident(self.v.strs.at(name_off))):
                raise self.fail(tid, "name.ident", f"parameter #{j} name is not a valid identifier")
            if self.needs_resolve(pt) and not self.resolved(ptype):
                self.resolve(pt, ptype)
            if self.id_size(ptype) is None:
                raise self.fail(tid, "func_proto.param", f"parameter #{j} type {ptype} has no size")

    def resolve_valid(self, t: BtfType, tid: int) -> bool:
        if not self.resolved(tid):
            return False
        k = t.kind
        if k in (Kind.STRUCT, Kind.UNION, Kind.DATASEC):
            return not self.rid[tid] and not self.rsize[tid]
        if k in (Kind.DECL_TAG, Kind.FUNC):
            return bool(self.rid[tid]) and not self.rsize[tid]
        if k in _MODIFIERS or k in (Kind.PTR, Kind.VAR):
            rt = self.by_id(self.rid[tid])
            return rt is not None and (rt is _VOID or rt.kind not in _MODIFIERS | {Kind.VAR, Kind.DATASEC})
        if k == Kind.ARRAY:
            r = self.id_size(t.fixed[0])
            return r is not None and r[0].kind not in _MODIFIERS and \
                (t.fixed[2] * r[2]) & _U32 == self.rsize[tid]
        return False

    # --- struct members (check_member / check_kflag_member of the member's kind) -----------------
    def check_member(self, tid: int, st: BtfType, j: int, mtype: int, mt: BtfType) -> None:
        moff = st.elems[j][2]
        if st.kflag:
            self._kflag_member(tid, st, j, moff, mtype, mt)
        else:
            self._member_check(tid, st, j, moff, mtype, mt)

    def _exceeds(self, tid: int, st: BtfType, j: int) -> _Reject:
        return self.fail(tid, "member.size", f"{self._member(st, j)} does not fit in size {st.size}")

    def _aligned(self, tid: int, st: BtfType, j: int, bits_off: int) -> None:
        if bits_off & 7:
            raise self.fail(tid, "member.align", f"{self._member(st, j)} bit offset {bits_off} is not "
                            "byte aligned")

    def _member_check(self, tid: int, st: BtfType, j: int, off: int, mtype: int, mt: BtfType) -> None:
        k = mt.kind
        size = st.size
        if k == Kind.INT:
            data = mt.fixed[0]
            if _U32 - off < (data >> 16) & 0xFF:
                raise self.fail(tid, "member.offset", f"{self._member(st, j)} bit offset overflows")
            off += (data >> 16) & 0xFF
            nbytes_off = off >> 3
            copy_bits = (data & 0xFF) + (off & 7)
            if copy_bits > 128:
                raise self.fail(tid, "member.bits", f"{self._member(st, j)} spans more than 128 bits")
            if size < nbytes_off or size - nbytes_off < _roundup_bytes(copy_bits):
                raise self._exceeds(tid, st, j)
        elif k in _MODIFIERS:
            r = self.id_size(mtype)
            if r is None:
                raise self.fail(tid, "member.type", f"{self._member(st, j)} type {mtype} has no size")
            self._member_check(tid, st, j, off, r[1], r[0])
        elif k == Kind.PTR:
            self._aligned(tid, st, j, off)
            if (size - (off >> 3)) & _U32 < 8:
                raise self._exceeds(tid, st, j)
        elif k == Kind.ARRAY:
            self._aligned(tid, st, j, off)
            r = self.id_size(mtype)
            asize = r[2] if r is not None else 0
            if (size - (off >> 3)) & _U32 < asize:
                raise self._exceeds(tid, st, j)
        elif k in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            self._aligned(tid, st, j, off)
            if (size - (off >> 3)) & _U32 < mt.size:
                raise self._exceeds(tid, st, j)
        elif k == Kind.FLOAT:
            align_bits = min(8, mt.size) * 8
            if not align_bits or off % align_bits:
                raise self.fail(tid, "member.align", f"{self._member(st, j)} is not aligned for a "
                                f"{mt.size}-byte FLOAT")
            if (off >> 3) + mt.size > size:
                raise self._exceeds(tid, st, j)
        else:
            raise self.fail(tid, "member.type", f"{self._member(st, j)} has kind {kind_name(k)}, which "
                            "cannot be a member")

    def _kflag_member(self, tid: int, st: BtfType, j: int, off: int, mtype: int, mt: BtfType) -> None:
        k = mt.kind
        size = st.size
        nr_bits = off >> 24
        bits_off = off & 0xFFFFFF
        if k == Kind.INT:
            if not _int_regular(mt):
                raise self.fail(tid, "member.bitfield", f"{self._member(st, j)}: a bitfield's base INT "
                                "must be a regular (byte-sized) integer")
            int_bits = mt.int_bits
            if not nr_bits:
                self._aligned(tid, st, j, bits_off)
                nr_bits = int_bits
            elif nr_bits > int_bits:
                raise self.fail(tid, "member.bitfield", f"{self._member(st, j)} bitfield size {nr_bits} "
                                f"is over the INT's {int_bits} bits")
            copy_bits = nr_bits + (bits_off & 7)
            if copy_bits > 128:
                raise self.fail(tid, "member.bits", f"{self._member(st, j)} spans more than 128 bits")
            nbytes_off = bits_off >> 3
            if size < nbytes_off or size - nbytes_off < _roundup_bytes(copy_bits):
                raise self._exceeds(tid, st, j)
        elif k in _MODIFIERS:
            r = self.id_size(mtype)
            if r is None:
                raise self.fail(tid, "member.type", f"{self._member(st, j)} type {mtype} has no size")
            self._kflag_member(tid, st, j, off, r[1], r[0])
        elif k in (Kind.ENUM, Kind.ENUM64):
            if not nr_bits:
                self._aligned(tid, st, j, bits_off)
                nr_bits = 32
            elif nr_bits > 32:
                raise self.fail(tid, "member.bitfield", f"{self._member(st, j)} enum bitfield size "
                                f"{nr_bits} is over 32")
            if size < _roundup_bytes(bits_off + nr_bits):
                raise self._exceeds(tid, st, j)
        elif k in (Kind.PTR, Kind.ARRAY, Kind.STRUCT, Kind.UNION, Kind.FLOAT):
            if nr_bits:
                raise self.fail(tid, "member.bitfield", f"{self._member(st, j)} is a bitfield of a "
                                f"{kind_name(k)}")
            self._member_check(tid, st, j, off, mtype, mt)
        else:
            raise self.fail(tid, "member.type", f"{self._member(st, j)} has kind {kind_name(k)}, which "
                            "cannot be a member")


class _DepthOrLoop(Exception):
    def __init__(self, errno: int, tid: int) -> None:
        super().__init__(errno)
        self.errno = errno
        self.tid = tid
