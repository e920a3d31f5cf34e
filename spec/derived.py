"""The grammar's record layouts as plain tables, so that reading BTF does not import Construct.

The tables between the markers are :func:`btfspec.spec.grammar.derived_tables` written out by
``python -m btfspec.spec.grammar`` (run it after changing the grammar); they are a cache of that
derivation, not a second declaration: ``tests/test_spec_codec.py`` fails when they differ from what
``spec/grammar.py`` declares. :mod:`btfspec.spec.fastpath` reads them; ``ByteOrder`` and
:func:`byteorder_of` live here too, for modules that need them without the grammar.
"""

from __future__ import annotations

from typing import Literal

ByteOrder = Literal["little", "big"]

# --- derived from spec/grammar.py by `python -m btfspec.spec.grammar`: do not edit ---
HEADER = (
    'HBBLLLLLLL',
    ('magic', 'version', 'flags', 'hdr_len', 'type_off', 'type_len', 'str_off', 'str_len', 'layout_off', 'layout_len'),
)
KIND_RECORDS = {
    1: ('L', ('int_data',), '', ()),
    2: ('', (), '', ()),
    3: ('LLL', ('type', 'index_type', 'nelems'), '', ()),
    4: ('', (), 'LLL', ('name_off', 'type', 'offset')),
    5: ('', (), 'LLL', ('name_off', 'type', 'offset')),
    6: ('', (), 'Ll', ('name_off', 'val')),
    7: ('', (), '', ()),
    8: ('', (), '', ()),
    9: ('', (), '', ()),
    10: ('', (), '', ()),
    11: ('', (), '', ()),
    12: ('', (), '', ()),
    13: ('', (), 'LL', ('name_off', 'type')),
    14: ('L', ('linkage',), '', ()),
    15: ('', (), 'LLL', ('type', 'offset', 'size')),
    16: ('', (), '', ()),
    17: ('l', ('component_idx',), '', ()),
    18: ('', (), '', ()),
    19: ('', (), 'LLL', ('name_off', 'val_lo32', 'val_hi32')),
}
LAYOUT_ENTRY = (
    'BBH',
    ('info_sz', 'elem_sz', 'flags'),
)
# --- end of the derived tables ---


def byteorder_of(blob: bytes) -> ByteOrder:
    """Byte order from the magic (``9f eb`` little, ``eb 9f`` big); ``ValueError`` otherwise."""
    if blob[:2] == b"\x9f\xeb":
        return "little"
    if blob[:2] == b"\xeb\x9f":
        return "big"
    raise ValueError(f"bad magic {blob[:2].hex() or '(empty)'}: not BTF")


def prefix(order: ByteOrder) -> str:
    """The ``struct`` byte-order prefix of ``order``."""
    return "<" if order == "little" else ">"


def header_format(order: ByteOrder) -> tuple[str, tuple[str, ...]]:
    """``struct`` format (with byte-order prefix) and field names of the full 32-byte header."""
    return prefix(order) + HEADER[0], HEADER[1]
