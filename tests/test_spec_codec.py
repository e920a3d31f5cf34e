"""The Construct grammar and the derived fast path: byte-exact round trips and agreement."""

from __future__ import annotations

import pytest

from btfspec.btfgen.samples import every_kind, small_split
from btfspec.spec import grammar
from btfspec.spec.errors import BtfError
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf
from tests.helpers import host_vmlinux


def assert_same_types(model: Btf, container) -> None:
    """Every type decoded by the fast path equals the Construct codec's view of it."""
    types = container.types or []
    assert model.nr_types == len(types)
    for (tid, t), c in zip(model.own_types(), types, strict=True):
        assert (t.name_off, t.info, t.size_type) == (c.name_off, c.info, c.size_or_type), tid
        fixed = tuple(v & 0xFFFFFFFF for k, v in (c.fixed or {}).items() if not k.startswith("_"))
        assert t.fixed == fixed, tid
        elems = [tuple(v & 0xFFFFFFFF for k, v in e.items() if not k.startswith("_")) for e in (c.elems or [])]
        assert t.elems == elems, tid


@pytest.mark.parametrize("order", ["little", "big"])
def test_every_kind_round_trips_in_both_codecs(order: str) -> None:
    blob = every_kind(order).to_bytes()
    kinds = {t.kind for _, t in Btf.from_bytes(blob).own_types()}
    assert kinds == set(Kind) - {Kind.UNKN}
    c = grammar.parse(blob)
    assert grammar.build(c, order) == blob
    assert grammar.build(grammar.parse(blob, use_compiled=True), order, use_compiled=True) == blob
    m = Btf.from_bytes(blob)
    assert m.order == order
    assert m.to_bytes() == blob
    assert_same_types(m, c)


def test_byte_orders_describe_the_same_types() -> None:
    le = Btf.from_bytes(every_kind("little").to_bytes())
    be = Btf.from_bytes(every_kind("big").to_bytes())
    assert [t.words() for _, t in le.own_types()] == [t.words() for _, t in be.own_types()]
    assert le.to_bytes(order="big") == be.to_bytes()


def test_compiled_grammar_has_no_interpreted_fallbacks() -> None:
    for order in ("little", "big"):
        src = grammar.compiled(order).source
        assert src.count("linkedparsers[") == 0
        assert src.count("linkedbuilders[") == 0


def test_split_ids_and_strings_continue_from_base() -> None:
    base = Btf.from_bytes(every_kind().to_bytes())
    split_blob = small_split(base).to_bytes()
    split = Btf.from_bytes(split_blob, base)
    assert split.start_id == base.type_cnt
    assert split.start_str_off == base.str_len
    assert split.to_bytes() == split_blob
    tid = split.find_by_name("mod_state")[0]
    assert tid >= base.type_cnt
    head = split.type(tid).elems[0]
    assert split.name(head[0]) == "head"
    assert split.type(head[1]).kind == Kind.STRUCT  # resolved in the base
    # The split's own strings reuse the base's ("int" is not added again).
    assert b"int" not in split.strings.split(b"\0")
    assert_same_types(split, grammar.parse(split_blob))


def test_32_byte_header_is_parsed_and_kept() -> None:
    blob = every_kind().to_bytes(hdr_len=32)
    c = grammar.parse(blob)
    assert c.hdr.hdr_len == 32 and c.hdr.layout_len == 0
    assert grammar.build(c, "little") == blob
    m = Btf.from_bytes(blob)
    assert m.header.hdr_len == 32
    assert m.to_bytes() == blob
    assert m.to_bytes(hdr_len=24) == every_kind().to_bytes()


def test_builder_can_skip_dedup_and_point_into_strings() -> None:
    from btfspec.spec.builder import Builder

    b = Builder(dedup=False)
    b.int("int", 4, 1)
    b.int("int", 4, 1)
    assert b.btf.strings == b"\0int\0int\0"
    mid = b.btf.add_str("foobar") + 3
    tid = b.typedef(None, 1, raw_name=mid)
    assert b.btf.name(b.btf.type(tid)) == "bar"


@pytest.mark.parametrize("blob, what", [
    (b"", "truncated header"),
    (b"\x9f\xeb\x01\x00" + b"\x18\x00\x00\x00" + b"\x00" * 8, "truncated header"),
    (b"\x00\x00" + b"\x00" * 30, "bad magic"),
    (bytes.fromhex("9feb0100" "18000000" "00000000" "ffffff00" "00000000" "01000000") + b"\0", "past the end"),
])
def test_structural_errors_are_btf_errors(blob: bytes, what: str) -> None:
    with pytest.raises(BtfError) as exc:
        Btf.from_bytes(blob)
    assert what in str(exc.value)


def test_unknown_kind_names_type_and_offset() -> None:
    b = every_kind()
    blob = bytearray(b.to_bytes())
    blob[24 + 4 + 3] = 25  # kind byte of type [1] (little endian info word, top byte)
    with pytest.raises(BtfError) as exc:
        Btf.from_bytes(bytes(blob))
    assert exc.value.type_id == 1 and exc.value.offset == 24


def test_host_vmlinux_round_trips_byte_exactly() -> None:
    blob = host_vmlinux()
    m = Btf.from_bytes(blob)
    m.decode_all()
    assert m.to_bytes() == blob
    assert m.find_by_name("task_struct", Kind.STRUCT)


def test_host_vmlinux_construct_codec_round_trips_and_agrees() -> None:
    blob = host_vmlinux()
    c = grammar.parse(blob, use_compiled=True)  # our own trusted input: the compiled codec is allowed
    assert grammar.build(c, grammar.byteorder_of(blob), use_compiled=True) == blob
    m = Btf.from_bytes(blob)
    assert_same_types(m, c)


def test_fast_path_agrees_with_construct_on_generated_blobs() -> None:
    from hypothesis import given

    from btfspec.btfgen.mutate import valid_btfs

    @given(valid_btfs())
    def check(case: tuple[str, bytes]) -> None:
        _, blob = case
        for order in ("little", "big"):
            data = Btf.from_bytes(blob).to_bytes(order=order)
            c = grammar.parse(data)
            assert grammar.build(c, order) == data
            m = Btf.from_bytes(data)
            assert m.to_bytes() == data
            assert_same_types(m, c)

    check()


def _walk_or_error(words, hdr):
    from btfspec.spec import fastpath

    try:
        return fastpath._index_walk(words, hdr)
    except BtfError:
        return None


def test_vectorised_index_agrees_with_the_walk() -> None:
    """The pointer-doubling index gives the walk's offsets, or defers to it (never a wrong answer):
    on valid and mutated blobs (whatever their size), and on the host vmlinux."""
    from hypothesis import given, settings

    from btfspec.btfgen.mutate import mutated_blobs, valid_btfs
    from btfspec.spec import fastpath

    def agree(blob: bytes) -> None:
        try:
            hdr = fastpath.read_header(blob)
            words = fastpath.type_words(blob, hdr)
        except BtfError:
            return
        fast = fastpath._index_vectorised(words) if not hdr.type_len % 4 else None
        walk = _walk_or_error(words, hdr)
        assert fast is None or fast == walk, (fast, walk)

    @settings(max_examples=300)
    @given(valid_btfs())
    def valid(case: tuple[str, bytes]) -> None:
        hdr = fastpath.read_header(case[1])
        words = fastpath.type_words(case[1], hdr)
        assert fastpath._index_vectorised(words) == fastpath._index_walk(words, hdr)

    @settings(max_examples=500)
    @given(mutated_blobs())
    def mutated(case: tuple[str, bytes]) -> None:
        agree(case[1])

    valid()
    mutated()
    try:
        blob = host_vmlinux()
    except pytest.skip.Exception:
        return
    hdr = fastpath.read_header(blob)
    words = fastpath.type_words(blob, hdr)
    assert len(words) >= fastpath.VECTOR_MIN_WORDS
    assert fastpath._index_vectorised(words) == fastpath._index_walk(words, hdr)


# Kind 0 sized (3 words), 20..24 not (info_sz not a multiple of 4), 25 sized with one extra word
# and two words per element: the sizable kinds are not one range, so the table path is taken.
GAPPED_LAYOUT = ((0, 0, 0), *[(4, 4, 0)] * 19, *[(2, 0, 0)] * 5, (4, 8, 0))


@pytest.mark.parametrize("info_name, kind_layout", [("classic", GAPPED_LAYOUT), ("wide", None),
                                                    ("wide", GAPPED_LAYOUT)])
def test_vectorised_index_agrees_with_the_walk_on_other_layouts(info_name: str, kind_layout) -> None:
    """The same agreement with the wide info word and with kinds sized by a layout section."""
    from hypothesis import given, settings

    from btfspec.btfgen.mutate import mutated_blobs
    from btfspec.spec import fastpath
    from btfspec.spec.kinds import INFO_CLASSIC, INFO_WIDE

    info = INFO_WIDE if info_name == "wide" else INFO_CLASSIC
    seen = {"equal": 0}

    @settings(max_examples=300)
    @given(mutated_blobs())
    def agree(case: tuple[str, bytes]) -> None:
        try:
            hdr = fastpath.read_header(case[1])
            words = fastpath.type_words(case[1], hdr)
        except BtfError:
            return
        if hdr.type_len % 4:
            return
        fast = fastpath._index_vectorised(words, info, kind_layout)
        try:
            walk = fastpath._index_walk(words, hdr, 1, info, kind_layout)
        except BtfError:
            walk = None
        assert fast is None or fast == walk, (fast, walk)
        seen["equal"] += fast is not None

    agree()
    assert seen["equal"]  # not a test that only ever sees the vectorised index defer


def test_derived_tables_are_the_grammars() -> None:
    """spec/derived.py caches what the grammar declares (regenerate: ``python -m btfspec.spec.grammar``)."""
    from pathlib import Path

    from btfspec.spec import derived

    tables = grammar.derived_tables()
    assert (derived.HEADER, derived.KIND_RECORDS, derived.LAYOUT_ENTRY) == \
        (tables["HEADER"], tables["KIND_RECORDS"], tables["LAYOUT_ENTRY"])
    assert set(derived.KIND_RECORDS) == {int(k) for k in Kind if k != Kind.UNKN}
    assert grammar.render_derived_tables() in Path(derived.__file__).read_text()
    for order in ("little", "big"):
        assert derived.header_format(order) == grammar.header_format(order)  # type: ignore[arg-type]


def test_the_vectorised_full_decode_agrees_with_record_by_record_decoding() -> None:
    """decode_all's numpy path (objects of more than LOOP_MAX_TYPES types) makes the records that
    decoding one type at a time makes, on generated blobs of both byte orders and on the host vmlinux."""
    from hypothesis import given, settings

    from btfspec.btfgen.mutate import valid_btfs

    def same(blob: bytes) -> None:
        one, many = Btf.from_bytes(blob), Btf.from_bytes(blob)
        many._decode_all_vectorised()
        for tid in range(1, one.type_cnt):
            a, b = one.type(tid), many._types[tid - 1]
            assert b is not None and type(a) is type(b)
            assert (a.name_off, a.info, a.size_type, a.fixed, a.elems) == \
                (b.name_off, b.info, b.size_type, b.fixed, b.elems), tid

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(valid_btfs())
    def generated(case: tuple[str, bytes]) -> None:
        same(case[1])

    generated()
    same(host_vmlinux())


@pytest.mark.parametrize("was_enabled", [True, False])
def test_bulk_work_pauses_the_collector_and_leaves_it_as_it_was(was_enabled: bool) -> None:
    """The Construct codec runs with the cyclic collector off (rescanning its young objects at every
    collection cost it 1.25-1.5x); afterwards, even after an error, the collector is on or off as the
    caller had it."""
    import gc

    from btfspec.spec.gcpause import gc_paused

    blob = every_kind("little").to_bytes()
    seen: list[bool] = []
    original = grammar.compiled("little").parse
    before = gc.isenabled()
    try:
        gc.enable() if was_enabled else gc.disable()
        with gc_paused():
            seen.append(gc.isenabled())
        assert gc.isenabled() is was_enabled
        with pytest.raises(ValueError), gc_paused():
            raise ValueError("inside")
        assert gc.isenabled() is was_enabled
        codec = grammar.compiled("little")
        codec.parse = lambda data: seen.append(gc.isenabled()) or original(data)  # type: ignore[method-assign]
        grammar.parse(blob, use_compiled=True)
        with pytest.raises(Exception):  # noqa: B017 - Construct's own error types
            grammar.parse(blob[:40], use_compiled=True)
        assert gc.isenabled() is was_enabled
    finally:
        grammar.compiled("little").parse = original  # type: ignore[method-assign]
        gc.enable() if before else gc.disable()
    assert seen == [False, False, False]
