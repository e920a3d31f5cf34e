"""The kernel's resolve pass (``btf_check_all_types``) for standalone BTF: a port of its DFS resolver
with an explicit stack of at most 32 entries, visit states, resolved ids and sizes, and the member
checks (``check_member``/``check_kflag_member``) of every member kind.  It stops at the first
failure by raising :class:`~btfspec.spec.validate_common.Reject`, like the kernel."""

from __future__ import annotations

from btfspec.spec.kinds import Kind, kind_name
from btfspec.spec.model import Btf, BtfType, s32
from btfspec.spec.validate_common import (
    E2BIG,
    EEXIST,
    EINVAL,
    MODIFIERS,
    U32,
    VOID,
    Checker,
    Reject,
    roundup_bytes,
    show,
)
from btfspec.spec.validate_kernel_meta import kernel_ident, name_off_ok

MAX_RESOLVE_DEPTH = 32

_TBD, _PTR, _STRUCT_OR_ARRAY = 0, 1, 2
_NOT_VISITED, _VISITED, _RESOLVED = 0, 1, 2
_SIZED = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.DATASEC, Kind.FLOAT, Kind.ENUM64})
_NEEDS_RESOLVE = MODIFIERS | {Kind.PTR, Kind.STRUCT, Kind.UNION, Kind.ARRAY, Kind.VAR, Kind.FUNC,
                               Kind.DECL_TAG, Kind.DATASEC}
_SOURCE_ONLY = frozenset({Kind.VAR, Kind.DECL_TAG, Kind.DATASEC})
_NOSIZE = frozenset({Kind.FWD, Kind.FUNC, Kind.FUNC_PROTO})  # plus void


def _int_regular(t: BtfType) -> bool:
    bits = t.int_bits
    return not (bits & 7) and not t.int_offset and roundup_bytes(bits) in (1, 2, 4, 8, 16)


class Resolver:
    """A port of the kernel's DFS resolver: explicit stack of at most 32, visit states, resolved ids
    and sizes; it raises :class:`Reject` at the first failure."""

    def __init__(self, v: Checker, btf: Btf) -> None:
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
            return VOID
        return self.btf.type(tid) if tid < self.n else None

    @staticmethod
    def nosize_or_null(t: BtfType | None) -> bool:
        return t is None or t is VOID or t.kind in _NOSIZE

    def needs_resolve(self, t: BtfType) -> bool:
        return t is not VOID and t.kind in _NEEDS_RESOLVE

    def sink(self, t: BtfType) -> bool:
        if t is VOID:
            return True
        k = t.kind
        if self.mode == _TBD:
            return k not in _NEEDS_RESOLVE
        if self.mode == _PTR:
            return k not in MODIFIERS and k != Kind.PTR
        return k not in MODIFIERS and k not in (Kind.ARRAY, Kind.STRUCT, Kind.UNION)

    def resolved(self, tid: int) -> bool:
        return self.state[tid] == _RESOLVED

    def _sized(self, t: BtfType, tid: int) -> tuple[BtfType, int, int] | None:
        """(t, tid, size) for a type with a size of its own (sized kinds, ARRAY, PTR), else None."""
        if t.kind in _SIZED:
            return t, tid, t.size
        if t.kind == Kind.ARRAY:
            return t, tid, self.rsize[tid]
        if t.kind == Kind.PTR:
            return t, tid, 8
        return None

    def id_size(self, tid: int) -> tuple[BtfType, int, int] | None:
        """``btf_type_id_size``: (sized type, its id, size) or None (modifiers and VAR: their target's)."""
        t = self.by_id(tid)
        if self.nosize_or_null(t):
            return None
        assert t is not None
        r = self._sized(t, tid)
        if r is not None or (t.kind not in MODIFIERS and t.kind != Kind.VAR):
            return r
        sid = self.rid[tid]
        st = self.by_id(sid)
        if self.nosize_or_null(st):
            return None
        assert st is not None
        return self._sized(st, sid)

    def fail(self, tid: int, rule: str, msg: str, errno: int = EINVAL) -> Reject:
        t = self.btf.type(tid)
        return Reject(rule, f"{self.v.desc(tid, t)}: {msg}", tid, errno, self.v.rec(tid))

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
        self.rsize[tid] = rsize & U32
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
        if k in MODIFIERS:
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
        if nt is None or (nt is not VOID and nt.kind in _SOURCE_ONLY):
            what = "does not exist" if nt is None else f"is a {kind_name(nt.kind)}"
            raise self.fail(tid, "ref.range" if nt is None else "ref.kind", f"references type {nid}, which {what}")
        return nt

    def _follow_ptr(self, nid: int, nt: BtfType) -> bool:
        """After a modifier: push the pointer it resolved to if still unresolved (ptr/var resolve)."""
        if nt is not VOID and nt.kind in MODIFIERS:
            rid = self.rid[nid]
            rt = self.by_id(rid)
            if rt is not None and rt is not VOID and rt.kind == Kind.PTR and not self.sink(rt) \
                    and not self.resolved(rid):
                self.push(rt, rid)
                return True
        return False

    def _target_ready(self, tid: int, nid: int, *, through_ptr: bool) -> bool:
        """Is the referenced type ``nid`` resolved enough to finish ``tid``?  If not, push it (and,
        with ``through_ptr``, the pointer a resolved modifier leads to: ptr/var resolve)."""
        nt = self._next_ok(tid, nid)
        if not self.sink(nt) and not self.resolved(nid):
            self.push(nt, nid)
            return False
        return not (through_ptr and self._follow_ptr(nid, nt))

    def r_modifier(self, tid: int, t: BtfType) -> None:
        if self._target_ready(tid, t.type, through_ptr=False):
            self._pop_sized_or_void(tid, t.type)

    def r_ptr(self, tid: int, t: BtfType) -> None:
        if self._target_ready(tid, t.type, through_ptr=True):
            self._pop_sized_or_void(tid, t.type)

    def _pop_sized_or_void(self, tid: int, nid: int) -> None:
        r = self.id_size(nid)
        if r is None:
            nt = self.by_id(nid)
            if self.resolved(nid):
                nid = self.rid[nid]
                nt = self.by_id(nid)
            if not (nt is VOID or (nt is not None and nt.kind in (Kind.FWD, Kind.FUNC_PROTO))):
                raise self.fail(tid, "ref.size", f"references type {nid}, which has no size and is not "
                                "void, a FWD or a FUNC_PROTO")
        else:
            nid = r[1]
        self.pop(nid, 0)

    def r_var(self, tid: int, t: BtfType) -> None:
        nid = t.type
        if not self._target_ready(tid, nid, through_ptr=True):
            return
        r = self.id_size(nid)
        if r is None:
            raise self.fail(tid, "ref.size", f"variable type {nid} has no size")
        self.pop(r[1], 0)

    def _sized_part(self, tid: int, ref: int, rule: str, label: str) -> tuple[bool, tuple[BtfType, int, int] | None]:
        """An array's index or element type: (False, None) after pushing it when it needs resolving
        first, else (True, its ``id_size``)."""
        pt = self.by_id(ref)
        if self.nosize_or_null(pt) or pt.kind in _SOURCE_ONLY:  # type: ignore[union-attr]
            raise self.fail(tid, rule, f"{label} type {ref} is not a sized type")
        assert pt is not None
        if not self.sink(pt) and not self.resolved(ref):
            self.push(pt, ref)
            return False, None
        return True, self.id_size(ref)

    def r_array(self, tid: int, t: BtfType) -> None:
        elem_id, index_id, nelems = t.fixed
        ready, r = self._sized_part(tid, index_id, "array.index", "index")
        if not ready:
            return
        if r is None or r[0].kind != Kind.INT or not _int_regular(r[0]):
            raise self.fail(tid, "array.index", f"index type {index_id} is not a regular INT")
        ready, r = self._sized_part(tid, elem_id, "array.elem", "element")
        if not ready:
            return
        if r is None:
            raise self.fail(tid, "array.elem", f"element type {elem_id} has no size")
        est, esid, esize = r
        if est.kind == Kind.INT and not _int_regular(est):
            raise self.fail(tid, "array.elem", f"element type {elem_id} is a bitfield INT")
        if nelems and esize > U32 // nelems:
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
                    ("is void" if mt is VOID else f"is a {kind_name(mt.kind)}")
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
        return f"member {show(self.v.strs.at(name_off))}" if name_off else f"member #{j}"

    def r_datasec(self, top: list[int], tid: int, t: BtfType) -> None:
        # btf_datasec_resolve starts with resolve_mode = RESOLVE_TBD (kernel 9b459804, 2023): a VAR
        # resolved earlier in this pass through an ARRAY/STRUCT/PTR must not turn later VARs into sinks
        self.mode = _TBD
        for j in range(top[1], len(t.elems)):
            vid, _, vsize = t.elems[j]
            vt = self.by_id(vid)
            if vt is None or vt is VOID or vt.kind != Kind.VAR:
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
        if nt is None or nt is VOID or nt.kind not in (Kind.FUNC, Kind.STRUCT, Kind.UNION, Kind.VAR,
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
        if proto is None or proto is VOID or proto.kind != Kind.FUNC_PROTO:
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
            if pt is not VOID and pt.kind in _SOURCE_ONLY:
                raise self.fail(tid, "func_proto.param", f"parameter #{j} type {ptype} is a {kind_name(pt.kind)}")
            if name_off and (not name_off_ok(self.btf, name_off)
                             or not kernel_ident(self.v.strs.at(name_off))):
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
        if k in MODIFIERS or k in (Kind.PTR, Kind.VAR):
            rt = self.by_id(self.rid[tid])
            return rt is not None and (rt is VOID or rt.kind not in MODIFIERS | {Kind.VAR, Kind.DATASEC})
        if k == Kind.ARRAY:
            r = self.id_size(t.fixed[0])
            return r is not None and r[0].kind not in MODIFIERS and \
                (t.fixed[2] * r[2]) & U32 == self.rsize[tid]
        return False

    # --- struct members (check_member / check_kflag_member of the member's kind) -----------------
    def check_member(self, tid: int, st: BtfType, j: int, mtype: int, mt: BtfType) -> None:
        moff = st.elems[j][2]
        if mt.kind in MODIFIERS:  # checked as the sized type the modifiers lead to
            r = self.id_size(mtype)
            if r is None:
                raise self.fail(tid, "member.type", f"{self._member(st, j)} type {mtype} has no size")
            mt, mtype = r[0], r[1]
        if st.kflag:
            self._kflag_member(tid, st, j, moff, mtype, mt)
        else:
            self._member_check(tid, st, j, moff, mtype, mt)

    def _exceeds(self, tid: int, st: BtfType, j: int) -> Reject:
        return self.fail(tid, "member.size", f"{self._member(st, j)} does not fit in size {st.size}")

    def _not_a_member(self, tid: int, st: BtfType, j: int, k: int) -> Reject:
        return self.fail(tid, "member.type", f"{self._member(st, j)} has kind {kind_name(k)}, which cannot be "
                         "a member")

    def _aligned(self, tid: int, st: BtfType, j: int, bits_off: int) -> None:
        if bits_off & 7:
            raise self.fail(tid, "member.align", f"{self._member(st, j)} bit offset {bits_off} is not "
                            "byte aligned")

    def _member_check(self, tid: int, st: BtfType, j: int, off: int, mtype: int, mt: BtfType) -> None:
        k = mt.kind
        size = st.size
        if k == Kind.INT:
            data = mt.fixed[0]
            if U32 - off < (data >> 16) & 0xFF:
                raise self.fail(tid, "member.offset", f"{self._member(st, j)} bit offset overflows")
            off += (data >> 16) & 0xFF
            nbytes_off = off >> 3
            copy_bits = (data & 0xFF) + (off & 7)
            if copy_bits > 128:
                raise self.fail(tid, "member.bits", f"{self._member(st, j)} spans more than 128 bits")
            if size < nbytes_off or size - nbytes_off < roundup_bytes(copy_bits):
                raise self._exceeds(tid, st, j)
        elif k == Kind.PTR:
            self._aligned(tid, st, j, off)
            if (size - (off >> 3)) & U32 < 8:
                raise self._exceeds(tid, st, j)
        elif k == Kind.ARRAY:
            self._aligned(tid, st, j, off)
            r = self.id_size(mtype)
            asize = r[2] if r is not None else 0
            if (size - (off >> 3)) & U32 < asize:
                raise self._exceeds(tid, st, j)
        elif k in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            self._aligned(tid, st, j, off)
            if (size - (off >> 3)) & U32 < mt.size:
                raise self._exceeds(tid, st, j)
        elif k == Kind.FLOAT:
            align_bits = min(8, mt.size) * 8
            if not align_bits or off % align_bits:
                raise self.fail(tid, "member.align", f"{self._member(st, j)} is not aligned for a "
                                f"{mt.size}-byte FLOAT")
            if (off >> 3) + mt.size > size:
                raise self._exceeds(tid, st, j)
        else:
            raise self._not_a_member(tid, st, j, k)

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
            if size < nbytes_off or size - nbytes_off < roundup_bytes(copy_bits):
                raise self._exceeds(tid, st, j)
        elif k in (Kind.ENUM, Kind.ENUM64):
            if not nr_bits:
                self._aligned(tid, st, j, bits_off)
                nr_bits = 32
            elif nr_bits > 32:
                raise self.fail(tid, "member.bitfield", f"{self._member(st, j)} enum bitfield size "
                                f"{nr_bits} is over 32")
            if size < roundup_bytes(bits_off + nr_bits):
                raise self._exceeds(tid, st, j)
        elif k in (Kind.PTR, Kind.ARRAY, Kind.STRUCT, Kind.UNION, Kind.FLOAT):
            if nr_bits:
                raise self.fail(tid, "member.bitfield", f"{self._member(st, j)} is a bitfield of a "
                                f"{kind_name(k)}")
            self._member_check(tid, st, j, off, mtype, mt)
        else:
            raise self._not_a_member(tid, st, j, k)


class _DepthOrLoop(Exception):
    def __init__(self, errno: int, tid: int) -> None:
        super().__init__(errno)
        self.errno = errno
        self.tid = tid
