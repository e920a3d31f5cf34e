"""Small deterministic BTF samples built with :class:`btfspec.spec.builder.Builder` (fixtures for tests and demos)."""

from __future__ import annotations

from btfspec.spec.builder import Builder
from btfspec.spec.grammar import ByteOrder
from btfspec.spec.kinds import INT_BOOL, INT_CHAR, INT_SIGNED
from btfspec.spec.model import Btf


def every_kind(order: ByteOrder = "little") -> Builder:
    """A base BTF with all 19 kinds and the flag combinations the format allows."""
    b = Builder(order=order)
    i_int = b.int("int", 4, INT_SIGNED)
    b.int("char", 1, INT_CHAR)
    b.int("_Bool", 1, INT_BOOL)
    b.int("unsigned __int128", 16, 0)
    b.int("odd", 4, 3, bits=12, offset=4)  # SIGNED|CHAR: bpftool prints UNKN
    p_int = b.ptr(i_int)
    b.array(i_int, i_int, 0)
    arr = b.array(p_int, i_int, 16)
    s = b.struct("list_head", 16, [("next", 0, 0, 0), ("prev", 0, 64, 0)])
    lp = b.ptr(s)
    b.btf.type(s).elems[:] = [(b.str("next"), lp, 0), (b.str("prev"), lp, 64)]
    bits = b.struct("bits", 8, [("a", i_int, 0, 3), ("b", i_int, 3, 5), (None, i_int, 32, 0)])
    b.union(None, 8, [("x", i_int, 0, 0), ("y", arr, 0, 0)])
    b.union("ubits", 4, [("f", i_int, 0, 1)])
    b.enum("e_unsigned", 4, [("A", 0), ("B", 0xFFFFFFFF - (1 << 32)), ("C", 7)], signed=False)
    b.enum("e_signed", 4, [("N", -(1 << 31)), ("P", (1 << 31) - 1)], signed=True)
    b.enum(None, 1, [("X", 1)])
    b.fwd("fwd_s")
    b.fwd("fwd_u", union=True)
    td = b.typedef("int_t", i_int)
    v = b.volatile(td)
    c = b.const(v)
    r = b.restrict(lp)
    proto = b.func_proto(i_int, [("a", c), ("b", r), (None, 0)])
    b.func_proto(0, [])
    fn = b.func("do_it", proto, 1)
    b.func("ext_fn", proto, 2)
    var = b.var("counter", i_int, 1)
    b.var("local", i_int, 0)
    b.datasec(".data", 8, [(var, 0, 4)])
    b.float("double", 8)
    b.decl_tag("tag_on_fn", fn, -1)
    b.decl_tag("tag_on_member", bits, 1, attr=True)
    b.type_tag("user", p_int)
    b.type_tag("address_space(1)", 0, attr=True)
    b.enum64("e64", 8, [("BIG", 1 << 40), ("NEG", -1)], signed=True)
    b.enum64("e64u", 8, [("MAX", (1 << 64) - 1)], signed=False)
    return b


def small_split(base: Btf) -> Builder:
    """A split on ``base`` (expects :func:`every_kind`'s names) referencing base types the usual ways."""
    b = Builder(base)
    (i_int,) = base.find_by_name("int")
    (lh,) = base.find_by_name("list_head")
    p = b.ptr(lh)
    s = b.struct("mod_state", 24, [("head", lh, 0, 0), ("cnt", i_int, 128, 0), ("p", p, 0, 0)])
    b.btf.type(s).elems[2] = (b.str("p"), p, 128 + 32)
    proto = b.func_proto(i_int, [("st", b.ptr(s))])
    b.func("mod_fn", proto, 0)
    b.typedef("mod_int", i_int)
    return b
