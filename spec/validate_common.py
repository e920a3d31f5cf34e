"""What both rule sets of :mod:`btfspec.spec.validate` share: :class:`Violation`, errnos, bounded string
lookups, the string-section and type-walk checks, and :class:`Checker` (one run's violation list and
byte-offset bookkeeping)."""

from __future__ import annotations

import errno as _errno
import struct
from dataclasses import asdict, dataclass

from btfspec.spec.derived import ByteOrder, header_format
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.fastpath import Header, layouts
from btfspec.spec.kinds import (
    BTF_MAX_NAME_OFFSET,
    INFO_CLASSIC,
    KIND_MAX,
    InfoLayout,
    Kind,
    info_kind,
    kind_name,
)
from btfspec.spec.model import Btf, BtfType

EINVAL = -_errno.EINVAL
E2BIG = -_errno.E2BIG
EEXIST = -_errno.EEXIST
ELOOP = -_errno.ELOOP
ENOTSUP = -_errno.ENOTSUP  # libc's ENOTSUP (95), what libbpf returns
ENOTSUPP = -524  # the kernel-internal ENOTSUPP returned by BPF_BTF_LOAD

LIBBPF_MAX_STR_OFFSET = 0x7FFFFFFF  # libbpf's BTF_MAX_STR_OFFSET
KSYM_NAME_LEN = 512
MAX_VIOLATIONS = 1000
U32 = 0xFFFFFFFF

MODIFIERS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
VOID = BtfType(0, 0, 0)


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


@dataclass(frozen=True)
class Problem:
    """A violation plus libbpf v1.6's log line for it (``pr_warn``/``pr_debug`` text, no prefix)."""

    violation: Violation
    log: str = ""


class Stop(Exception):
    """A fatal violation: nothing after it can be checked."""


class Reject(Exception):
    """One kernel resolve-pass failure (the pass stops at the first, like the kernel)."""

    def __init__(self, rule: str, message: str, type_id: int | None, errno: int = EINVAL,
                 offset: int | None = None) -> None:
        super().__init__(message)
        self.violation = Violation(rule, message, offset, type_id, errno)


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------

def other_order(order: ByteOrder) -> ByteOrder:
    return "big" if order == "little" else "little"


def hdr_fields(raw24: bytes, order: ByteOrder) -> tuple[int, ...]:
    """(magic, version, flags, hdr_len, type_off, type_len, str_off, str_len) of a 24-byte header
    (the format is the grammar's, :func:`btfspec.spec.derived.header_format`, without the layout fields)."""
    fmt, names = header_format(order)
    return struct.unpack(fmt[:1 + names.index("layout_off")], raw24)


def layout_fields(raw8: bytes, order: ByteOrder) -> tuple[int, int]:
    """(layout_off, layout_len): header bytes 24..32 in the grammar's format."""
    fmt, names = header_format(order)
    off, length = struct.unpack(fmt[0] + fmt[1 + names.index("layout_off"):], raw8)
    return off, length


def roundup_bytes(bits: int) -> int:
    return (bits >> 3) + (1 if bits & 7 else 0)


def show(s: bytes | None) -> str:
    """A string for a message: quoted, cut at 60 characters, ``<invalid>`` for a bad offset."""
    if s is None:
        return "<invalid>"
    text = s.decode("latin-1")
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


class Strings:
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


# --------------------------------------------------------------------------------------------------
# checks both rule sets make (in the order libbpf and the kernel make them)
# --------------------------------------------------------------------------------------------------

def string_problems(blob: bytes, hdr: Header, *, split: bool, kernel: bool,
                    str_last: bool | None = None) -> list[Problem]:
    """``btf_parse_str_sec``: the string section (libbpf: its log lines; kernel: its limit).

    ``str_last`` (default: ``kernel``): the section must end the data (kernel 7.1: only for headers
    shorter than its 32-byte ``struct btf_header``).
    """
    start = hdr.hdr_len + hdr.str_off
    n = hdr.str_len
    data = blob[start:start + n]
    out = []
    if (kernel if str_last is None else str_last) and start + n != len(blob):
        out.append(Problem(Violation("sec.str_last", "the string section is not the last section", 16)))
    if split and n == 0:
        return out
    limit = BTF_MAX_NAME_OFFSET if kernel else LIBBPF_MAX_STR_OFFSET
    bad = "Invalid BTF string section"
    if n == 0:
        out.append(Problem(Violation("str.empty", "empty string section (a base BTF needs at least the empty "
                                     "string)", 20), bad))
    elif n - 1 > limit:
        out.append(Problem(Violation("str.size", f"string section of {n} bytes is over the limit ({limit + 1})",
                                     20), bad))
    elif data[-1]:
        out.append(Problem(Violation("str.unterminated", "the string section does not end with a NUL byte",
                                     start + n - 1), bad))
    if n and not split and data[0]:
        hint = "" if kernel else " (is this split BTF? give its base)"
        out.append(Problem(Violation("str.first_nul", f"the string section does not start with the empty "
                                     f"string{hint}", start),
                           "Malformed BTF string section, did you forget to provide base BTF?"))
    return out


def walk_problem(exc: BtfError, blob: bytes, order: ByteOrder, delta: int,
                 info_layout: InfoLayout = INFO_CLASSIC, *, modern: bool = False) -> Problem:
    """The type-section walk failed (``exc`` from the model, its offset ``delta`` bytes before the
    original blob's): unknown kind, a record running past the section, or trailing bytes. ``modern``:
    libbpf master's log line for a kind it cannot size (``btf_type_size_unknown``)."""
    off = None if exc.offset is None else exc.offset + delta
    rule = "type.truncated"
    msg = exc.message
    kind = None
    if off is not None and off + 8 <= len(blob):
        info = int.from_bytes(blob[off + 4:off + 8], order)
        kind = info_kind(info, info_layout)
        if exc.type_id is not None and (kind == 0 or kind > KIND_MAX):
            rule = "type.kind"
            msg = f"unsupported BTF kind {kind} (info {info:#010x})"
            if modern:
                msg += ": the layout section (own or the base's) has no usable entry for it"
    if exc.type_id is None:
        rule = "type.trailing"
    if exc.message.startswith("unsupported BTF kind") and kind is not None:
        log = f"Unsupported BTF_KIND: {kind}" if modern else f"Unsupported BTF_KIND:{kind}"
    elif exc.message.startswith("type record runs past"):
        log = f"BTF type [{exc.type_id}] is malformed"
    else:
        log = "BTF types data is malformed"
    return Problem(Violation(rule, msg, off, exc.type_id), log)


# --------------------------------------------------------------------------------------------------
# one validation run
# --------------------------------------------------------------------------------------------------

class Checker:
    """The violation list of one run (capped at ``limit``) and where things are in the blob."""

    def __init__(self, blob: bytes, *, limit: int | None = None) -> None:
        self.blob = blob
        self.limit = limit
        self.out: list[Violation] = []
        self.strs = Strings(None)
        self.btf: Btf | None = None
        self.delta = 0  # original offset - offset in the parsed blob

    def add(self, rule: str, message: str, offset: int | None = None, type_id: int | None = None,
            errno: int = EINVAL) -> None:
        """Record a violation; past the limit, a ``more`` entry and :class:`Stop`."""
        if self.limit is not None and len(self.out) >= self.limit:
            self.out.append(Violation("more", f"more violations not listed (limit {self.limit})"))
            raise Stop
        self.out.append(Violation(rule, message, offset, type_id, errno))

    def report(self, problems: list[Problem], *, fatal: bool = False) -> None:
        """Record ``problems``; ``fatal``: stop after them if there are any."""
        for p in problems:
            v = p.violation
            self.add(v.rule, v.message, v.offset, v.type_id, v.errno)
        if fatal and problems:
            raise Stop

    def base_problem(self, problems: list[Violation]) -> None:
        """The base BTF broke its rules: one fatal violation naming the first."""
        first = problems[0]
        self.add("base.invalid", f"the base BTF is invalid ({len(problems)} violation(s)), first: {first}",
                 None, None, first.errno)
        raise Stop

    def use(self, btf: Btf) -> None:
        self.btf = btf
        self.strs = Strings(btf)

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
        """``STRUCT 'name'`` or ``STRUCT (anon)``."""
        if not t.name_off:
            return f"{kind_name(t.kind)} (anon)"
        return f"{kind_name(t.kind)} {show(self.strs.at(t.name_off))}"
