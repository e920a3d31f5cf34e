"""Append types to a :class:`~btfspec.spec.model.Btf` the way libbpf's ``btf__add_*`` API does.

Names are interned with libbpf's rules (base first, exact-content dedup) unless the builder was
made with ``dedup=False``; ``raw_name=`` on any call takes a ready string offset, so tests can
point a name into the middle of a string or at an empty string at a non-zero offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from btfspec.spec.derived import ByteOrder
from btfspec.spec.kinds import Kind, make_info
from btfspec.spec.model import Btf, BtfType


class Builder:
    """Builds one BTF object; every ``add`` method returns the new type id."""

    def __init__(self, base: Btf | None = None, *, order: ByteOrder | None = None, dedup: bool = True) -> None:
        self.btf = Btf(base=base, order=order)
        self.dedup = dedup

    # --- helpers ---------------------------------------------------------------------------
    def str(self, name: str | bytes | None) -> int:
        """Offset of ``name`` (``None`` or empty -> 0)."""
        if not name:
            return 0
        return self.btf.add_str(name, dedup=self.dedup)

    def _name(self, name: str | bytes | None, raw_name: int | None) -> int:
        return raw_name if raw_name is not None else self.str(name)

    def add(self, kind: int, name_off: int, size_type: int, *, vlen: int = 0, kflag: int = 0,
            fixed: Sequence[int] = (), elems: Iterable[Sequence[int]] = (), info: int | None = None) -> int:
        """Append a record from its parts (``info`` overrides kind/vlen/kflag verbatim)."""
        el = [tuple([v & 0xFFFFFFFF for v in e]) for e in elems]  # each value as a u32, inline (a hot path)
        if info is None:
            info = make_info(kind, vlen if vlen else len(el), kflag)
        fx = tuple([v & 0xFFFFFFFF for v in fixed])
        return self.btf.add_type(BtfType(name_off, info, size_type & 0xFFFFFFFF, fx, el))

    # --- kinds -----------------------------------------------------------------------------
    def int(self, name: str | None, size: int, encoding: int = 0, *, bits: int | None = None,
            offset: int = 0, raw_name: int | None = None) -> int:
        nbits = size * 8 if bits is None else bits
        data = ((encoding & 0xF) << 24) | ((offset & 0xFF) << 16) | (nbits & 0xFF)
        return self.add(Kind.INT, self._name(name, raw_name), size, fixed=(data,))

    def float(self, name: str | None, size: int, *, raw_name: int | None = None) -> int:
        return self.add(Kind.FLOAT, self._name(name, raw_name), size)

    def ptr(self, ref: int) -> int:
        return self.add(Kind.PTR, 0, ref)

    def const(self, ref: int) -> int:
        return self.add(Kind.CONST, 0, ref)

    def volatile(self, ref: int) -> int:
        return self.add(Kind.VOLATILE, 0, ref)

    def restrict(self, ref: int) -> int:
        return self.add(Kind.RESTRICT, 0, ref)

    def typedef(self, name: str | None, ref: int, *, raw_name: int | None = None) -> int:
        return self.add(Kind.TYPEDEF, self._name(name, raw_name), ref)

    def type_tag(self, value: str | None, ref: int, *, attr: bool = False, raw_name: int | None = None) -> int:
        return self.add(Kind.TYPE_TAG, self._name(value, raw_name), ref, kflag=int(attr))

    def array(self, elem: int, index: int, nelems: int) -> int:
        return self.add(Kind.ARRAY, 0, 0, fixed=(elem, index, nelems))

    def fwd(self, name: str | None, *, union: bool = False, raw_name: int | None = None) -> int:
        return self.add(Kind.FWD, self._name(name, raw_name), 0, kflag=int(union))

    def composite(self, kind: int, name: str | None, size: int,
                  members: Sequence[tuple[str | None, int, int, int]] = (), *, kflag: int | None = None,
                  raw_name: int | None = None) -> int:
        """STRUCT/UNION; members are ``(name, type, bit_offset, bitfield_size)``.

        kind_flag is set when any member is a bitfield (as ``btf__add_field`` does) unless given.
        """
        kf = kflag if kflag is not None else int(any(m[3] for m in members))
        name_off = self._name(name, raw_name)  # libbpf interns the type name before member names
        elems = []
        for mname, mtype, bit_off, bf_size in members:
            off = ((bf_size & 0xFF) << 24) | (bit_off & 0xFFFFFF) if kf else bit_off
            elems.append((self.str(mname), mtype, off))
        return self.add(kind, name_off, size, kflag=kf, elems=elems)

    def struct(self, name: str | None, size: int, members: Sequence[tuple[str | None, int, int, int]] = (),
               **kw: int | None) -> int:
        return self.composite(Kind.STRUCT, name, size, members, **kw)

    def union(self, name: str | None, size: int, members: Sequence[tuple[str | None, int, int, int]] = (),
              **kw: int | None) -> int:
        return self.composite(Kind.UNION, name, size, members, **kw)

    def enum(self, name: str | None, size: int, values: Sequence[tuple[str, int]] = (), *,
             signed: bool | None = None, raw_name: int | None = None) -> int:
        """ENUM with 32-bit values; signedness (kind_flag) defaults to 'any value negative'."""
        kf = int(signed if signed is not None else any(v < 0 for _, v in values))
        return self.add(Kind.ENUM, self._name(name, raw_name), size, kflag=kf,
                        elems=[(self.str(n), v) for n, v in values])

    def enum64(self, name: str | None, size: int, values: Sequence[tuple[str, int]] = (), *,
               signed: bool = False, raw_name: int | None = None) -> int:
        name_off = self._name(name, raw_name)
        elems = []
        for n, v in values:
            v &= 0xFFFFFFFFFFFFFFFF
            elems.append((self.str(n), v & 0xFFFFFFFF, v >> 32))
        return self.add(Kind.ENUM64, name_off, size, kflag=int(signed), elems=elems)

    def func_proto(self, ret: int, params: Sequence[tuple[str | None, int]] = ()) -> int:
        """FUNC_PROTO; a final ``(None, 0)`` parameter marks a variadic function."""
        return self.add(Kind.FUNC_PROTO, 0, ret, elems=[(self.str(n), t) for n, t in params])

    def func(self, name: str | None, proto: int, linkage: int = 0, *, raw_name: int | None = None) -> int:
        return self.add(Kind.FUNC, self._name(name, raw_name), proto, vlen=linkage)

    def var(self, name: str | None, ref: int, linkage: int = 0, *, raw_name: int | None = None) -> int:
        return self.add(Kind.VAR, self._name(name, raw_name), ref, fixed=(linkage,))

    def datasec(self, name: str | None, size: int, vars: Sequence[tuple[int, int, int]] = (), *,
                raw_name: int | None = None) -> int:
        """DATASEC; entries are ``(type, offset, size)``."""
        return self.add(Kind.DATASEC, self._name(name, raw_name), size, elems=list(vars))

    def decl_tag(self, value: str | None, ref: int, component_idx: int = -1, *, attr: bool = False,
                 raw_name: int | None = None) -> int:
        return self.add(Kind.DECL_TAG, self._name(value, raw_name), ref, kflag=int(attr),
                        fixed=(component_idx,))

    def to_bytes(self, **kw: int) -> bytes:
        """Raw bytes of the built BTF."""
        return self.btf.to_bytes(**kw)
