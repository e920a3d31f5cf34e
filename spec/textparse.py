"""Read bpftool's ``format raw`` text back into BTF (the inverse of :func:`btfspec.spec.text.dump_raw`).

The text fixes every value bpftool prints, so ``dump_raw(parse_text(dump_raw(x))) == dump_raw(x)``.
It does not carry everything in a blob; what is lost is rebuilt as follows:

- the string section's layout: names are interned like ``btf__add_str`` (base first, exact-content
  dedup), so a name that pointed into the middle of a string gets its own string, ``'(anon)'``
  becomes offset 0 and ``''`` an empty string at a non-zero offset (a string terminator);
- bits bpftool does not print: the kind_flag of DECL_TAG/TYPE_TAG (0), reserved ``info`` bits (0),
  a STRUCT/UNION kind_flag without bitfields (set only when a member has a ``bitfield_size``);
- values printed as unknown: INT ``encoding=UNKN`` becomes 8, linkage ``(unknown)`` becomes 3;
- the header: 24 bytes, types then strings, in the requested byte order;
- the ``(KIND 'name')`` note after a DATASEC entry is derived from the entry's type and ignored.

Names are printed raw, so a name holding a newline cannot be read back (the line after it is
reported as malformed).

Malformed text raises :class:`TextError` (an :class:`~btfspec.spec.errors.InputError`) whose message names
the file and line: ``path:LINE: what``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from btfspec.spec.builder import Builder
from btfspec.spec.derived import ByteOrder
from btfspec.spec.errors import InputError
from btfspec.spec.kinds import LINKAGE_NAMES, Kind
from btfspec.spec.model import Btf
from btfspec.spec.text import INT_ENC_STR, KIND_STR, UNKNOWN_LINKAGE

INT_UNKN_ENCODING = 8  # what ``encoding=UNKN`` is rebuilt as
UNKNOWN_LINKAGE_VALUE = 3  # what ``linkage=(unknown)`` is rebuilt as

_ENC_VALUE = {v: k for k, v in INT_ENC_STR.items()} | {"UNKN": INT_UNKN_ENCODING}
_LINKAGE_VALUE = {v: k for k, v in LINKAGE_NAMES.items()} | {UNKNOWN_LINKAGE: UNKNOWN_LINKAGE_VALUE}
_KIND_VALUE = {name: k for k, name in enumerate(KIND_STR) if name != "UNKNOWN"}

_HEADER = re.compile(r"\[(\d+)\] ([A-Z0-9_]+) '(.*)'(.*)", re.S)
_N = r"(\d+)"
_LINK = r"(static|global|extern|\(unknown\))"
_FIELDS: dict[int, re.Pattern[str]] = {
    Kind.INT: re.compile(rf" size={_N} bits_offset={_N} nr_bits={_N} encoding=(\(none\)|SIGNED|CHAR|BOOL|UNKN)"),
    Kind.PTR: re.compile(rf" type_id={_N}"),
    Kind.ARRAY: re.compile(rf" type_id={_N} index_type_id={_N} nr_elems={_N}"),
    Kind.STRUCT: re.compile(rf" size={_N} vlen={_N}"),
    Kind.ENUM: re.compile(rf" encoding=(SIGNED|UNSIGNED) size={_N} vlen={_N}"),
    Kind.FWD: re.compile(r" fwd_kind=(struct|union)"),
    Kind.FUNC: re.compile(rf" type_id={_N} linkage={_LINK}"),
    Kind.FUNC_PROTO: re.compile(rf" ret_type_id={_N} vlen={_N}"),
    Kind.VAR: re.compile(rf" type_id={_N}, linkage={_LINK}"),
    Kind.FLOAT: re.compile(rf" size={_N}"),
    Kind.DECL_TAG: re.compile(rf" type_id={_N} component_idx=(-?\d+)"),
}
for _k in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG):
    _FIELDS[_k] = _FIELDS[Kind.PTR]
_FIELDS[Kind.UNION] = _FIELDS[Kind.DATASEC] = _FIELDS[Kind.STRUCT]
_FIELDS[Kind.ENUM64] = _FIELDS[Kind.ENUM]

_ELEMS: dict[int, re.Pattern[str]] = {
    Kind.STRUCT: re.compile(rf"\t'(.*)' type_id={_N} bits_offset={_N}(?: bitfield_size={_N})?", re.S),
    Kind.ENUM: re.compile(r"\t'(.*)' val=(-?\d+)", re.S),
    Kind.ENUM64: re.compile(r"\t'(.*)' val=(-?\d+)(U?LL)", re.S),
    Kind.FUNC_PROTO: re.compile(rf"\t'(.*)' type_id={_N}", re.S),
    Kind.DATASEC: re.compile(rf"\ttype_id={_N} offset={_N} size={_N}(?: \([A-Z0-9_]+ '.*'\))?", re.S),
}
_ELEMS[Kind.UNION] = _ELEMS[Kind.STRUCT]

U32 = (1 << 32) - 1


class TextError(InputError):
    """Malformed ``format raw`` text; ``line`` is 1-based."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass
class _Pending:
    """A header line waiting for its element lines."""

    line: int
    tid: int
    kind: int
    name: str
    values: tuple[str, ...]
    vlen: int
    elems: list[tuple[int, tuple[str | None, ...]]] = field(default_factory=list)


class _Reader:
    def __init__(self, base: Btf | None, order: ByteOrder, path: str) -> None:
        self.b = Builder(base, order=order)
        self.path = path
        self.empty_off: int | None = None
        self.lineno = 0

    def error(self, message: str, line: int | None = None) -> TextError:
        return TextError(self.path, self.lineno if line is None else line, message)

    def num(self, text: str | None, what: str, hi: int = U32, lo: int = 0) -> int:
        """A printed number, range-checked."""
        if text is None or len(text) > 24:
            raise self.error(f"{what}={text} is out of range [{lo}, {hi}]")
        v = int(text)
        if not lo <= v <= hi:
            raise self.error(f"{what}={v} is out of range [{lo}, {hi}]")
        return v

    def name(self, text: str | None) -> int:
        """String offset for a printed name."""
        assert text is not None  # name groups are not optional
        if text == "(anon)":
            return 0
        if text == "":
            return self.empty()
        if "\n" in text or "\0" in text:
            raise self.error("a name cannot hold a newline or NUL")
        return self.b.btf.add_str(text.encode("latin-1"))

    def empty(self) -> int:
        """A non-zero offset of an empty string: the terminator of the last own string."""
        if self.empty_off is None:
            btf = self.b.btf
            last = btf.start_str_off + btf.str_len - 1
            self.empty_off = last if btf.str_len and last > 0 else btf.append_raw_strings(b"\0")
        return self.empty_off

    # --- one type -----------------------------------------------------------------------------
    def build(self, t: _Pending) -> None:
        self.lineno = t.line
        k, v, add = t.kind, t.values, self.b.add
        name = self.name(t.name)
        if k == Kind.INT:
            data = (_ENC_VALUE[v[3]] << 24) | (self.num(v[1], "bits_offset", 0xFF) << 16) \
                | self.num(v[2], "nr_bits", 0xFF)
            add(k, name, self.num(v[0], "size"), fixed=(data,))
        elif k in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG):
            add(k, name, self.num(v[0], "type_id"))
        elif k == Kind.ARRAY:
            add(k, name, 0, fixed=(self.num(v[0], "type_id"), self.num(v[1], "index_type_id"),
                                   self.num(v[2], "nr_elems")))
        elif k in (Kind.STRUCT, Kind.UNION):
            self.composite(t, name)
        elif k in (Kind.ENUM, Kind.ENUM64):
            self.enum(t, name)
        elif k == Kind.FWD:
            add(k, name, 0, kflag=int(v[0] == "union"))
        elif k == Kind.FUNC:
            add(k, name, self.num(v[0], "type_id"), vlen=_LINKAGE_VALUE[v[1]])
        elif k == Kind.FUNC_PROTO:
            elems = []
            for line, (pname, ptype) in t.elems:
                self.lineno = line
                elems.append((self.name(pname), self.num(ptype, "type_id")))
            add(k, name, self.num(v[0], "ret_type_id"), elems=elems, vlen=len(elems))
        elif k == Kind.VAR:
            add(k, name, self.num(v[0], "type_id"), fixed=(_LINKAGE_VALUE[v[1]],))
        elif k == Kind.DATASEC:
            elems = []
            for line, (vt, vo, vs) in t.elems:
                self.lineno = line
                elems.append((self.num(vt, "type_id"), self.num(vo, "offset"),
                              self.num(vs, "size")))
            add(k, name, self.num(v[0], "size"), elems=elems, vlen=len(elems))
        elif k == Kind.FLOAT:
            add(k, name, self.num(v[0], "size"))
        elif k == Kind.DECL_TAG:
            idx = self.num(v[1], "component_idx", 0x7FFFFFFF, -0x80000000)
            add(k, name, self.num(v[0], "type_id"), fixed=(idx,))

    def composite(self, t: _Pending, name: int) -> None:
        members: list[tuple[int, int, int, int]] = []
        for line, (mname, mtype, moff, mbits) in t.elems:
            self.lineno = line
            bits = self.num(mbits, "bitfield_size", 0xFF, 1) if mbits is not None else 0
            members.append((self.name(mname), self.num(mtype, "type_id"),
                            self.num(moff, "bits_offset"), bits))
        kflag = int(any(m[3] for m in members))
        if kflag:
            for (_, _, off, _), (line, _) in zip(members, t.elems, strict=True):
                if off > 0xFFFFFF:
                    raise self.error(f"bits_offset={off} does not fit in 24 bits, but the type has "
                                     "bitfields (kind_flag set)", line)
        elems = [(n, ty, (bits << 24) | off) for n, ty, off, bits in members]
        self.b.add(t.kind, name, self.num(t.values[0], "size"), kflag=kflag, elems=elems, vlen=len(elems))

    def enum(self, t: _Pending, name: int) -> None:
        signed = t.values[0] == "SIGNED"
        elems: list[tuple[int, ...]] = []
        for line, ev in t.elems:
            self.lineno = line
            n = self.name(ev[0])
            if t.kind == Kind.ENUM:
                val = self.num(ev[1], "val", 0x7FFFFFFF, -0x80000000) if signed \
                    else self.num(ev[1], "val")
                elems.append((n, val & U32))
            else:
                if (ev[2] == "LL") != signed:
                    raise self.error(f"suffix {ev[2]} does not match encoding={t.values[0]}")
                val = self.num(ev[1], "val", (1 << 63) - 1, -(1 << 63)) if signed \
                    else self.num(ev[1], "val", (1 << 64) - 1)
                val &= (1 << 64) - 1
                elems.append((n, val & U32, val >> 32))
        self.b.add(t.kind, name, self.num(t.values[1], "size"), kflag=int(signed), elems=elems,
                   vlen=len(elems))


def _as_latin1(text: str | bytes) -> str:
    """The text with one character per byte (see :func:`parse_text`)."""
    if isinstance(text, bytes | bytearray | memoryview):
        return bytes(text).decode("latin-1")
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")


def parse_text(text: str | bytes, base: Btf | None = None, order: ByteOrder = "little", *,
               path: str = "<text>") -> Btf:
    """Build BTF from ``bpftool btf dump ... format raw`` output (see the module docstring for what is lost).

    ``text`` is best given as bytes (bpftool's stdout). A ``str`` follows :func:`btfspec.spec.text.dump_raw`'s
    convention of one character per byte; a ``str`` holding characters above U+00FF is taken as
    decoded UTF-8. With ``base`` the text must start at the base's ``type_cnt`` (split BTF).
    Raises :class:`TextError` with ``path:line`` on malformed text.
    """
    r = _Reader(base, order, path)
    expected = r.b.btf.start_id
    pending: _Pending | None = None
    lines = _as_latin1(text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        r.lineno = lineno
        if line.startswith("\t"):
            if pending is None or pending.kind not in _ELEMS:
                raise r.error("element line outside a STRUCT, UNION, ENUM, ENUM64, FUNC_PROTO or DATASEC")
            if len(pending.elems) == pending.vlen:
                raise r.error(f"more element lines than vlen={pending.vlen} of type [{pending.tid}]")
            m = _ELEMS[pending.kind].fullmatch(line)
            if m is None:
                raise r.error(f"malformed {KIND_STR[pending.kind]} element line: {_show(line)}")
            pending.elems.append((lineno, m.groups()))
            continue
        if pending is not None:
            _finish(r, pending)
            pending = None
        m = _HEADER.fullmatch(line)
        if m is None:
            raise r.error(f"expected a type line '[ID] KIND 'name' ...', got {_show(line)}")
        tid_text, kind_name, name, rest = m.groups()
        tid = int(tid_text)
        if tid != expected:
            hint = ""
            if lineno == 1 and base is None and tid > 1:
                hint = " (split BTF text needs its base)"
            elif lineno == 1 and base is not None:
                hint = f" (the base has type_cnt {base.type_cnt})"
            raise r.error(f"expected type id {expected}, got [{tid}]{hint}")
        expected += 1
        kind = _KIND_VALUE.get(kind_name)
        if kind is None:
            raise r.error(f"kind {kind_name} cannot be rebuilt from text")
        fm = _FIELDS[kind].fullmatch(rest)
        if fm is None:
            raise r.error(f"malformed {kind_name} fields: {_show(rest)}")
        values = fm.groups()
        vlen = 0
        if kind in _ELEMS:
            vlen = r.num(values[-1], "vlen", 0xFFFF)
        pending = _Pending(lineno, tid, kind, name, values, vlen)
        if not vlen:
            _finish(r, pending)
            pending = None
    if pending is not None:
        _finish(r, pending)
    return r.b.btf


def _finish(r: _Reader, t: _Pending) -> None:
    if len(t.elems) != t.vlen:
        raise r.error(f"type [{t.tid}] has vlen={t.vlen} but {len(t.elems)} element lines", t.line)
    r.build(t)


def _show(s: str, limit: int = 60) -> str:
    return repr(s if len(s) <= limit else s[:limit] + "...")

