"""The ``.BTF_ids`` section of a kernel module: which words are type ids, and rewriting them.

``.BTF_ids`` is a bag of u32 words in the ELF's byte order (include/linux/btf_ids.h). Nothing in the
section says which word is an id, so -- like ``resolve_btfids`` -- we read the ELF symbol table:

* ``__BTF_ID__{struct,union,typedef,func}__<name>__<n>`` marks one 4-byte id slot (``BTF_ID``);
* ``__BTF_ID__set__<name>`` marks a ``BTF_SET`` header: ``u32 cnt`` then ``cnt`` ids (each id slot has
  its own ``__BTF_ID__`` symbol); the symbol's size is ``4 * (cnt + 1)``;
* ``__BTF_ID__set8__<name>`` marks a ``BTF_SET8`` header: ``u32 cnt, u32 flags`` then ``cnt`` pairs
  ``{u32 id, u32 flags}``; the symbol's size is ``8 * (cnt + 1)``.

Unmarked words (set headers, set8 flags, ``BTF_ID_UNUSED`` padding) are never touched. After a
rewrite, the ids of every set are sorted again (set8 pairs move with their flags), as
``resolve_btfids`` does and as the kernel does after ``btf_relocate_id()``: sets are searched with
``bsearch``.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from elftools.elf.elffile import ELFFile

from btfspec.spec.errors import InputError, one_line

SECTION = ".BTF_ids"
PREFIX = "__BTF_ID__"
SLOT_KINDS = ("struct", "union", "typedef", "func")


@dataclass(frozen=True)
class IdSlot:
    """One 4-byte id slot: byte offset in the section and the symbol that marks it."""

    offset: int
    symbol: str

    @property
    def what(self) -> str:
        """``struct task_struct`` for ``__BTF_ID__struct__task_struct__12``."""
        rest = self.symbol[len(PREFIX):]
        kind, _, name = rest.partition("__")
        name = name.rsplit("__", 1)[0] if "__" in name else name
        return f"{kind} {name}"


@dataclass(frozen=True)
class IdSet:
    """A ``BTF_SET`` (``kind="set"``) or ``BTF_SET8`` (``kind="set8"``) header."""

    name: str
    kind: str
    offset: int
    count: int

    @property
    def entry_size(self) -> int:
        return 8 if self.kind == "set8" else 4

    @property
    def entries_offset(self) -> int:
        return self.offset + self.entry_size


@dataclass(frozen=True)
class BtfIdsLayout:
    """Where the ids of a ``.BTF_ids`` section are (from the ELF symbol table)."""

    size: int
    order: str  # "<" or ">" (the ELF's byte order)
    slots: tuple[IdSlot, ...] = ()
    sets: tuple[IdSet, ...] = ()


@dataclass
class RemapResult:
    """A rewritten section and what happened to it."""

    data: bytes
    remapped: int = 0  # non-zero id slots rewritten through the map
    changed: int = 0  # of those, slots whose value changed
    sets_sorted: int = 0
    unresolved: list[str] = field(default_factory=list)  # warnings: ids the map cannot express


def _symtab(elf: ELFFile):  # noqa: ANN202 - pyelftools has no type hints
    for sec in elf.iter_sections():
        if sec["sh_type"] == "SHT_SYMTAB":
            return sec
    return None


def parse_layout(elf_data: bytes, label: str = "<elf>") -> BtfIdsLayout | None:
    """The id layout of ``elf_data``'s ``.BTF_ids`` section, or None when it has none.

    Raises InputError when the section cannot be interpreted: no symbol table, a marking symbol
    outside the section, an unknown ``__BTF_ID__`` prefix, or a set running past the end.
    """
    try:
        elf = ELFFile(io.BytesIO(elf_data))
        index, sec = None, None
        for i, s in enumerate(elf.iter_sections()):
            if s.name == SECTION:
                index, sec = i, s
                break
        if sec is None:
            return None
        size, addr = int(sec["sh_size"]), int(sec["sh_addr"])
        order = "<" if elf.little_endian else ">"
        symtab = _symtab(elf)
        symbols = [] if symtab is None else [(s.name, int(s["st_value"]), int(s["st_size"]), s["st_shndx"])
                                             for s in symtab.iter_symbols()]
    except InputError:
        raise
    except Exception as e:  # pyelftools raises ELFError, struct errors, construct errors, ...
        raise InputError(f"{label}: malformed ELF symbol table: {one_line(e) or type(e).__name__}") from None
    slots: dict[int, IdSlot] = {}
    sets: list[IdSet] = []
    for name, value, sym_size, shndx in symbols:
        if shndx != index or not name.startswith(PREFIX):
            continue
        off = value - addr
        rest = name[len(PREFIX):]
        if rest.startswith(SLOT_KINDS):
            if not 0 <= off <= size - 4 or off % 4:
                raise InputError(f"{label}: {SECTION} symbol {name} at offset {off:#x} is not a 4-byte slot "
                                 f"inside the section ({size:#x} bytes)")
            slots.setdefault(off, IdSlot(off, name))
            continue
        kind = "set8" if rest.startswith("set8__") else "set" if rest.startswith("set__") else None
        if kind is None:
            raise InputError(f"{label}: {SECTION} symbol {name} has an unsupported prefix "
                             f"(expected struct, union, typedef, func, set or set8)")
        unit = 8 if kind == "set8" else 4
        the_set = IdSet(rest[len(kind) + 2:], kind, off, max(sym_size // unit - 1, 0))
        if off < 0 or off % 4 or off + unit * (the_set.count + 1) > size:
            raise InputError(f"{label}: {SECTION} {kind} '{the_set.name}' at offset {off:#x} with "
                             f"{the_set.count} entries runs past the end of the section ({size:#x} bytes)")
        sets.append(the_set)
    if symtab is None and size:
        raise InputError(f"{label}: has a {SECTION} section but no symbol table, so its type ids cannot be "
                         f"located (was it stripped?)")
    return BtfIdsLayout(size, order, tuple(sorted(slots.values(), key=lambda s: s.offset)),
                        tuple(sorted(sets, key=lambda s: s.offset)))


def read_ids(data: bytes, layout: BtfIdsLayout) -> list[tuple[IdSlot, int]]:
    """Every marked slot with the id it holds."""
    word = struct.Struct(layout.order + "I")
    return [(slot, word.unpack_from(data, slot.offset)[0]) for slot in layout.slots]


def check_marked(data: bytes, layout: BtfIdsLayout, label: str) -> None:
    """InputError when the section holds non-zero words but no symbol marks any id slot."""
    if not layout.slots and not layout.sets and any(data):
        raise InputError(f"{label}: {SECTION} holds data but no {PREFIX}* symbols mark its type ids, "
                         f"so they cannot be rewritten")


def remap(data: bytes, layout: BtfIdsLayout, id_map: Callable[[int], int | None], *,
          label: str = SECTION, limit: int | None = None, describe: Callable[[int], str] | None = None,
          missing: str = "has no counterpart in the new BTF") -> RemapResult:
    """Rewrite every marked id slot through ``id_map``, then sort every set again.

    ``id_map(old)`` returns the new id, or None when the old id has no counterpart (it is then
    written as 0, an unresolved id, as ``resolve_btfids`` writes one, and a warning is recorded).
    A slot holding 0 (unresolved) stays 0; a slot holding an id ``>= limit`` (not a type of the
    BTF the section belongs to) is an InputError. ``describe(id)`` names an old id in warnings,
    ``missing`` says why an id has no counterpart.
    """
    if len(data) != layout.size:
        raise InputError(f"{label}: {SECTION} is {len(data)} bytes, the ELF says {layout.size}")
    check_marked(data, layout, label)
    word = struct.Struct(layout.order + "I")
    out = bytearray(data)
    result = RemapResult(b"")
    for slot, old in read_ids(data, layout):
        if old == 0:
            continue
        if limit is not None and old >= limit:
            raise InputError(f"{label}: {SECTION} {slot.symbol} (offset {slot.offset:#x}) holds type id {old}, "
                             f"but the module's BTF has ids below {limit} only")
        new = id_map(old)
        if new is None:
            what = describe(old) if describe else f"[{old}]"
            result.unresolved.append(f"{SECTION} {slot.symbol} (offset {slot.offset:#x}): type {what} {missing}; "
                                     f"written as 0 (unresolved)")
            new = 0
        word.pack_into(out, slot.offset, new)
        result.remapped += 1
        result.changed += new != old
    for the_set in layout.sets:
        if _sort_set(out, the_set, layout.order):
            result.sets_sorted += 1
    result.data = bytes(out)
    return result


def _sort_set(buf: bytearray, the_set: IdSet, order: str) -> bool:
    """Sort a set's entries by id (set8 pairs keep their flags); True when the order changed."""
    start, n, unit = the_set.entries_offset, the_set.count, the_set.entry_size
    if n < 2:
        return False
    entries = [bytes(buf[start + i * unit:start + (i + 1) * unit]) for i in range(n)]
    key = struct.Struct(order + "I")
    ordered = sorted(entries, key=lambda e: key.unpack_from(e)[0])
    if ordered == entries:
        return False
    buf[start:start + n * unit] = b"".join(ordered)
    return True
