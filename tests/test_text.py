"""bpftool text forms: ``dump_raw``/``dump_json`` against the real bpftool, ``parse_text`` round trips, CLI.

Expected output is always produced by running bpftool in the test, never written down here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from btfspec.cli import main
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf
from btfspec.spec.text import FORK_MIN_WORDS, dump_json, dump_raw
from btfspec.spec.textparse import TextError, parse_text
from tests.helpers import host_vmlinux

BPFTOOL = shutil.which("bpftool")
VMLINUX = Path("/sys/kernel/btf/vmlinux")
BTFSPEC = Path(sys.executable).with_name("btfspec")
needs_bpftool = pytest.mark.skipif(BPFTOOL is None, reason="bpftool is not installed")


def bpftool_dump(path: Path, base: Path | None = None, *, as_json: bool = False) -> bytes:
    """bpftool's stdout for ``btf dump file PATH [-B BASE] format raw`` (``-j`` for JSON)."""
    assert BPFTOOL is not None
    argv = [BPFTOOL] + (["-j"] if as_json else []) + (["-B", str(base)] if base else [])
    res = subprocess.run(argv + ["btf", "dump", "file", str(path), "format", "raw"], capture_output=True)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    return res.stdout


def raw(btf: Btf, **kw: int) -> bytes:
    return dump_raw(btf, **kw).encode("latin-1")


# --- inputs --------------------------------------------------------------------------------------


def edge_builder(json_safe: bool = False) -> Builder:
    """Every kind and flag combination libbpf 1.1 loads, plus awkward names.

    ``json_safe`` leaves out names bpftool 7.1 cannot write as JSON (``'``, ``\\``, non-UTF-8).
    """
    b = Builder()
    i32 = b.int("int", 4, 1)
    u8 = b.int("unsigned char", 1)
    b.int("char", 1, 2)
    b.int("_Bool", 1, 4)
    b.int("enc3", 4, 3)  # SIGNED|CHAR prints UNKN
    b.int("enc8", 8, 8, bits=63, offset=1)
    b.int("enc15", 2, 15, bits=255, offset=255)
    p = b.ptr(i32)
    b.const(p)
    b.volatile(i32)
    b.restrict(p)
    td = b.typedef("my_t", i32)
    b.type_tag("user", p)
    b.type_tag("address_space(1)", 0, attr=True)  # kflag TYPE_TAG, as in 6.18 vmlinux
    b.array(i32, u8, 0)
    b.array(td, i32, 0xFFFFFFFF)
    b.struct("plain", 16, [("a", i32, 0, 0), (None, u8, 32, 0), ("hi", i32, 0xFFFFFF00, 0)])
    b.struct("bits", 8, [("x", i32, 0, 3), ("y", i32, 3, 0), (None, u8, 0xFFFFFF, 255), ("z", u8, 8, 1)])
    b.struct(None, 0)
    b.struct("kf_nobits", 4, [("a", i32, 0, 0)], kflag=1)
    b.union("u", 4, [("a", i32, 0, 0), ("b", u8, 0, 5)])
    b.union(None, 4, [(None, i32, 0, 0)])
    b.enum("ue", 4, [("Z", 0), ("MAXS", 0x7FFFFFFF), ("MINS", 0x80000000), ("ALL", 0xFFFFFFFF)], signed=False)
    b.enum("se", 4, [("M1", -1), ("MIN", -(1 << 31)), ("MAX", (1 << 31) - 1)])
    b.enum(None, 1)
    b.enum64("ue64", 8, [("Z", 0), ("ALL", (1 << 64) - 1), ("TOP", 1 << 63), ("LO", 0xFFFFFFFF)])
    b.enum64("se64", 8, [("M1", -1), ("MIN", -(1 << 63)), ("MAX", (1 << 63) - 1)], signed=True)
    b.fwd("fs")
    b.fwd("fu", union=True)
    fp = b.func_proto(i32, [(None, i32), ("named", p)])
    b.func_proto(0, [])
    vp = b.func_proto(0, [("fmt", p), (None, 0)])  # variadic
    for link in range(4):  # 3 prints (unknown)
        b.func(f"f{link}", fp if link != 2 else vp, link)
    vars_ = [b.var(f"v{link}", i32, link) for link in (0, 1, 2, 7)]
    b.float("double", 8)
    b.datasec(".data", 64, [(vars_[0], 0, 4), (0, 4, 4), (vars_[3], 8, 4), (i32, 12, 4)])  # type 0
    b.datasec(".bss", 0)
    b.decl_tag("tag1", td, -1)
    b.decl_tag("tag2", fp, 1, attr=True)
    b.decl_tag("tag3", td, 0x7FFFFFFF)
    whole = b.str("hello_world")
    b.typedef(None, i32, raw_name=whole + 6)  # mid-string: prints 'world'
    b.typedef(None, i32, raw_name=whole + 11)  # its NUL: an empty name at a non-zero offset prints ''
    b.typedef("naïve_ü".encode(), i32)
    b.struct("(anon)", 0)  # a real name that looks anonymous
    if not json_safe:
        b.typedef(b"caf\xe9", i32)  # latin-1, not UTF-8
        b.typedef("it's \"q\" \\ x", i32)
        b.struct("a' size=1 vlen=0", 4, [("m' type_id=1 bits_offset=0", i32, 0, 0)])
    return b


def split_pair() -> tuple[Btf, Btf]:
    """(base, split): the split refers to base types and names, DATASEC entries hit both and void."""
    base = Btf.from_bytes(edge_builder(json_safe=True).to_bytes())
    s = Builder(base=base)
    i32 = base.find_by_name("int")[0]
    t = s.typedef("split_t", i32)
    s.struct("sp", 8, [("a", i32, 0, 0), ("my_t", t, 32, 0)])  # 'my_t' comes from the base strings
    v = s.var("sv", t, 1)
    s.datasec(".data", 8, [(v, 0, 4), (base.find_by_name("v0")[0], 4, 4), (0, 0, 0)])
    s.typedef(None, i32, raw_name=(base.find_str(b"hello_world") or 0) + 6)  # a base mid-string
    s.typedef("own", t)
    return base, Btf.from_bytes(s.to_bytes(), base=base)


@pytest.fixture(scope="module")
def edge_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("text")
    base, split = split_pair()
    files = {"edge": edge_builder().to_bytes(), "safe": edge_builder(json_safe=True).to_bytes(),
             "big": edge_builder().btf.to_bytes(order="big"), "base": base.to_bytes(), "split": split.to_bytes()}
    out = {}
    for name, blob in files.items():
        out[name] = d / f"{name}.btf"
        out[name].write_bytes(blob)
    return out


@pytest.fixture(scope="module")
def vmlinux() -> Btf:
    return Btf.from_bytes(host_vmlinux())


# --- dump vs bpftool -----------------------------------------------------------------------------


@needs_bpftool
@pytest.mark.parametrize("name", ["edge", "safe", "big"])
def test_raw_identical_to_bpftool_on_every_kind_and_flag(edge_files: dict[str, Path], name: str) -> None:
    btf = Btf.from_bytes(edge_files[name].read_bytes())
    kinds = {t.kind for _, t in btf.own_types()}
    assert kinds == set(range(1, 20))
    assert raw(btf) == bpftool_dump(edge_files[name])


@needs_bpftool
def test_raw_identical_on_split(edge_files: dict[str, Path]) -> None:
    base = Btf.from_bytes(edge_files["base"].read_bytes())
    split = Btf.from_bytes(edge_files["split"].read_bytes(), base=base)
    expected = bpftool_dump(edge_files["split"], edge_files["base"])
    assert expected.startswith(f"[{base.type_cnt}] ".encode())
    assert raw(split) == expected


@needs_bpftool
def test_json_equal_to_bpftool(edge_files: dict[str, Path]) -> None:
    safe = Btf.from_bytes(edge_files["safe"].read_bytes())
    assert {"types": dump_json(safe)} == json.loads(bpftool_dump(edge_files["safe"], as_json=True))
    base = Btf.from_bytes(edge_files["base"].read_bytes())
    split = Btf.from_bytes(edge_files["split"].read_bytes(), base=base)
    ref = json.loads(bpftool_dump(edge_files["split"], edge_files["base"], as_json=True))
    assert {"types": dump_json(split)} == ref


@needs_bpftool
def test_vmlinux_raw_and_json_identical_to_bpftool(vmlinux: Btf) -> None:
    assert raw(vmlinux) == bpftool_dump(VMLINUX)
    assert {"types": dump_json(vmlinux)} == json.loads(bpftool_dump(VMLINUX, as_json=True))


def test_dump_follows_model_edits_and_built_objects() -> None:
    """Decoded-and-edited, added and never-parsed types are printed from the model."""
    b = edge_builder()
    built = b.btf
    parsed = Btf.from_bytes(b.to_bytes())
    assert raw(built) == raw(parsed)
    t = parsed.type(1)
    t.size_type = 8
    text = dump_raw(parsed)
    assert text.startswith("[1] INT 'int' size=8 bits_offset=0 nr_bits=32 encoding=SIGNED\n")
    assert text.count("\n") == dump_raw(built).count("\n")


def test_start_id_prints_the_base_too() -> None:
    base, split = split_pair()
    whole = dump_raw(split, start_id=1)
    assert whole == dump_raw(base) + dump_raw(split)
    assert dump_raw(split, start_id=split.type_cnt - 1) == dump_raw(split).splitlines(True)[-1]
    assert dump_raw(split, start_id=split.type_cnt) == ""


def test_invalid_name_offsets_print_invalid() -> None:
    b = Builder()
    b.typedef(None, 0, raw_name=1000)
    assert dump_raw(b.btf) == "[1] TYPEDEF '(invalid)' type_id=0\n"
    assert dump_json(b.btf)[0]["name"] == "(invalid)"


def test_kinds_libbpf_cannot_load_print_as_unknown() -> None:
    b = Builder()
    b.add(20, b.str("x"), 0, info=(20 << 24) | 1)
    b.datasec("s", 0, [(1, 0, 0)])
    assert dump_raw(b.btf) == ("[1] UNKNOWN 'x'\n[2] DATASEC 's' size=0 vlen=1\n"
                               "\ttype_id=1 offset=0 size=0 (UNKNOWN 'x')\n")
    assert dump_json(b.btf)[0] == {"id": 1, "kind": "UNKNOWN", "name": "x"}


# --- random types against bpftool -------------------------------------------------------------------

_U32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def random_btf(draw: st.DrawFn) -> Builder:
    """A small loadable BTF of random kinds with arbitrary values where libbpf 1.1 does not check them."""
    b = Builder()
    names = ["a", "b", "(anon)", "x y", "q'", ""]

    def nm() -> int:
        return b.str(draw(st.sampled_from(names)))

    n = draw(st.integers(1, 12))
    for i in range(n):
        cnt = i + 1  # type_cnt so far: references must stay below it
        ref = st.integers(0, cnt - 1)
        kind = draw(st.sampled_from([k for k in Kind if k not in (Kind.UNKN, Kind.FUNC)]))
        kflag = draw(st.integers(0, 1))
        vlen = draw(st.integers(0, 3))
        if kind == Kind.INT:
            b.add(kind, nm(), draw(_U32), fixed=(draw(_U32),))
        elif kind in (Kind.STRUCT, Kind.UNION):
            b.add(kind, nm(), draw(_U32), kflag=kflag, elems=[(nm(), draw(ref), draw(_U32)) for _ in range(vlen)])
        elif kind == Kind.ENUM:
            b.add(kind, nm(), draw(_U32), kflag=kflag, elems=[(nm(), draw(_U32)) for _ in range(vlen)])
        elif kind == Kind.ENUM64:
            b.add(kind, nm(), draw(_U32), kflag=kflag,
                  elems=[(nm(), draw(_U32), draw(_U32)) for _ in range(vlen)])
        elif kind == Kind.FUNC_PROTO:
            b.add(kind, 0, draw(_U32), elems=[(nm(), draw(ref)) for _ in range(vlen)])
        elif kind == Kind.DATASEC:
            b.add(kind, nm(), draw(_U32), elems=[(draw(ref), draw(_U32), draw(_U32)) for _ in range(vlen)])
        elif kind == Kind.ARRAY:
            b.add(kind, 0, 0, fixed=(draw(ref), draw(ref), draw(_U32)))
        elif kind == Kind.VAR:
            b.add(kind, nm(), draw(ref), fixed=(draw(_U32),))
        elif kind == Kind.DECL_TAG:
            b.add(kind, nm(), draw(ref), kflag=kflag, fixed=(draw(_U32),))
        elif kind in (Kind.FWD, Kind.FLOAT):
            b.add(kind, nm(), 0 if kind == Kind.FWD else draw(_U32), kflag=kflag if kind == Kind.FWD else 0)
        else:  # PTR, modifiers, TYPEDEF, TYPE_TAG
            b.add(kind, nm(), draw(ref), kflag=kflag if kind == Kind.TYPE_TAG else 0)
    proto = b.func_proto(0, [])
    b.add(Kind.FUNC, nm(), proto, vlen=draw(st.integers(0, 0xFFFF)))
    return b


def _reader_cases() -> dict[str, tuple[Btf, int | None]]:
    """(object, start_id) pairs covering built, parsed, edited, split and odd-name objects."""
    base, split = split_pair()
    edited = Btf.from_bytes(edge_builder().to_bytes())
    edited.type(3).size_type = 9  # decoded and edited: printed from the model
    invalid = Builder()
    invalid.typedef(None, 0, raw_name=1000)
    unknown = Builder()
    unknown.add(20, unknown.str("x"), 0, info=(20 << 24) | 1)
    unknown.datasec("s", 0, [(1, 0, 0)])
    no_strings = Builder(base=base)  # a split with an empty own string section
    no_strings.typedef(None, 1, raw_name=base.find_str(b"int"))
    no_strings.typedef(None, 1, raw_name=base.str_len)  # where its own strings would start
    no_strings.typedef(None, 1, raw_name=base.str_len + 5)
    return {"built": (edge_builder().btf, None), "parsed": (Btf.from_bytes(edge_builder().to_bytes()), None),
            "big": (Btf.from_bytes(edge_builder().btf.to_bytes(order="big")), None), "edited": (edited, None),
            "split": (split, None), "split+base": (split, 1), "invalid": (invalid.btf, None),
            "unknown kind": (unknown.btf, None), "no own strings": (no_strings.btf, None)}


@pytest.mark.parametrize("case", list(_reader_cases()))
def test_array_reader_prints_what_the_list_reader_prints(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large objects are read with numpy (``_ArrayRecords``); forced onto small ones it prints the
    same text as the record-by-record reader that bpftool is compared with above."""
    from btfspec.spec import text

    btf, start_id = _reader_cases()[case]
    expected = dump_raw(btf, start_id=start_id)
    monkeypatch.setattr(text, "VECTOR_MIN_WORDS", 0)
    assert isinstance(text._records(btf.flat_words(), btf, btf.start_id, btf.type_cnt, btf), text._ArrayRecords)
    assert dump_raw(btf, start_id=start_id) == expected


@pytest.mark.parametrize("case", list(_reader_cases()))
def test_forked_dump_prints_what_one_process_prints(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large object's second half is formatted by a forked helper; forced onto small objects (of
    every shape the readers take) the text is the one-process text, and a helper that fails (here:
    raises in the child) leaves the parent to print that half itself."""
    from btfspec.spec import forked, text

    btf, start_id = _reader_cases()[case]
    expected = dump_raw(btf, start_id=start_id, fork=False)
    monkeypatch.setattr(text, "FORK_MIN_WORDS", 0)
    monkeypatch.setattr(text, "VECTOR_MIN_WORDS", 0)
    monkeypatch.setattr(text, "can_fork", lambda: True)
    helpers: list[forked.ForkedCall] = []
    monkeypatch.setattr(text, "ForkedCall", lambda fn: helpers.append(forked.ForkedCall(fn)) or helpers[-1])
    assert dump_raw(btf, start_id=start_id) == expected
    if text._halfway(btf.flat_words(), btf, btf.start_id) is None:
        assert btf.nr_types < 2 or not helpers  # nothing to split: no helper
        return
    assert helpers and all(h.pid is None for h in helpers)  # a helper ran, and was reaped
    parent, own_lines = os.getpid(), text._own_lines

    def fails_in_child(*args: object) -> list[str]:
        if os.getpid() != parent:
            raise RuntimeError("helper fails")
        return own_lines(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(text, "_own_lines", fails_in_child)
    assert dump_raw(btf, start_id=start_id) == expected


@given(st.data())
def test_array_reader_on_random_btf(data: st.DataObject) -> None:
    from btfspec.spec import text

    btf = data.draw(random_btf()).btf
    expected = dump_raw(btf)
    saved, text.VECTOR_MIN_WORDS = text.VECTOR_MIN_WORDS, 0
    try:
        assert dump_raw(btf) == expected
    finally:
        text.VECTOR_MIN_WORDS = saved


@needs_bpftool
@given(random_btf())
def test_random_btf_identical_to_bpftool_and_round_trips(tmp_path_factory: pytest.TempPathFactory,
                                                         b: Builder) -> None:
    path = tmp_path_factory.mktemp("rnd") / "r.btf"
    path.write_bytes(b.to_bytes())
    text = raw(b.btf)
    assert text == bpftool_dump(path)
    assert raw(parse_text(text)) == text


# --- parse_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("json_safe", [False, True])
@pytest.mark.parametrize("order", ["little", "big"])
def test_parse_text_round_trip_every_kind(json_safe: bool, order: str) -> None:
    text = raw(Btf.from_bytes(edge_builder(json_safe).to_bytes()))
    rebuilt = parse_text(text, order=order)  # type: ignore[arg-type]
    blob = rebuilt.to_bytes()
    assert blob[:2] == (b"\x9f\xeb" if order == "little" else b"\xeb\x9f")
    assert raw(Btf.from_bytes(blob)) == text
    # the str convention of dump_raw works too
    assert raw(parse_text(text.decode("latin-1"))) == text


def test_parse_text_rebuilds_what_text_cannot_carry() -> None:
    text = raw(Btf.from_bytes(edge_builder().to_bytes()))
    btf = parse_text(text)
    by_name = {btf.name(t): t for _, t in btf.own_types() if t.name_off}
    assert "(anon)" not in by_name  # '(anon)' is always offset 0
    assert by_name["world"].name_off == btf.find_str(b"world")  # a whole string of its own now
    empty = [t for _, t in btf.own_types() if t.name_off and btf.str_at(t.name_off) == b""]
    assert len(empty) == 1
    assert by_name["address_space(1)"].kflag == 0  # TYPE_TAG kind_flag is not printed
    assert by_name["kf_nobits"].kflag == 0 and by_name["bits"].kflag == 1
    assert by_name["enc3"].int_encoding == 8 and by_name["f3"].vlen == 3 and by_name["v7"].fixed == (3,)


@needs_bpftool
def test_parse_text_output_loads_in_bpftool(tmp_path: Path) -> None:
    text = raw(Btf.from_bytes(edge_builder().to_bytes()))
    out = tmp_path / "rebuilt.btf"
    out.write_bytes(parse_text(text).to_bytes())
    assert bpftool_dump(out) == text


def test_parse_text_split() -> None:
    base, split = split_pair()
    text = raw(split)
    rebuilt = parse_text(text, base=base)
    assert rebuilt.start_id == base.type_cnt
    assert raw(Btf.from_bytes(rebuilt.to_bytes(), base=base)) == text
    with pytest.raises(TextError, match=rf"^<text>:1: expected type id 1, got \[{base.type_cnt}\] \(split BTF text"):
        parse_text(text)


def test_parse_text_vmlinux_round_trip(vmlinux: Btf) -> None:
    text = raw(vmlinux)
    rebuilt = Btf.from_bytes(parse_text(text).to_bytes())
    assert rebuilt.type_cnt == vmlinux.type_cnt
    assert raw(rebuilt) == text


def test_parse_text_empty() -> None:
    assert parse_text(b"").type_cnt == 1
    assert dump_raw(parse_text("")) == ""


GOOD = "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n"


@pytest.mark.parametrize(("text", "line", "what"), [
    ("[2] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n", 1, "expected type id 1, got [2]"),
    (GOOD + "[3] PTR '(anon)' type_id=1\n", 2, "expected type id 2, got [3]"),
    (GOOD + "garbage\n", 2, "expected a type line"),
    (GOOD + "\n", 2, "expected a type line"),
    ("[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=WEIRD\n", 1, "malformed INT fields"),
    ("[1] INT 'int' size=4 bits_offset=256 nr_bits=32 encoding=SIGNED\n", 1, "bits_offset=256 is out of range"),
    ("[1] PTR '(anon)' type_id=4294967296\n", 1, "type_id=4294967296 is out of range"),
    ("[1] PTR '(anon)' type_id=" + "9" * 5000 + "\n", 1, "is out of range"),
    ("[1] UNKNOWN '(anon)'\n", 1, "kind UNKNOWN cannot be rebuilt"),
    ("[1] BOGUS 'x'\n", 1, "kind BOGUS cannot be rebuilt"),
    ("\t'a' type_id=1 bits_offset=0\n", 1, "element line outside"),
    (GOOD + "\t'a' type_id=1 bits_offset=0\n", 2, "element line outside"),
    ("[1] STRUCT 's' size=4 vlen=2\n\t'a' type_id=0 bits_offset=0\n[2] PTR '(anon)' type_id=0\n", 1,
     "type [1] has vlen=2 but 1 element lines"),
    ("[1] STRUCT 's' size=4 vlen=1\n\t'a' type_id=0 bits_offset=0\n\t'b' type_id=0 bits_offset=0\n", 3,
     "more element lines than vlen=1"),
    ("[1] STRUCT 's' size=4 vlen=1\n\t'a' type_id=0 offset=0\n", 2, "malformed STRUCT element line"),
    ("[1] STRUCT 's' size=4 vlen=2\n\t'a' type_id=0 bits_offset=16777216\n"
     "\t'b' type_id=0 bits_offset=0 bitfield_size=1\n", 2, "does not fit in 24 bits"),
    ("[1] STRUCT 's' size=4 vlen=1\n\t'a' type_id=0 bits_offset=0 bitfield_size=0\n", 2,
     "bitfield_size=0 is out of range"),
    ("[1] ENUM 'e' encoding=SIGNED size=4 vlen=1\n\t'a' val=2147483648\n", 2, "val=2147483648 is out of range"),
    ("[1] ENUM 'e' encoding=UNSIGNED size=4 vlen=1\n\t'a' val=-1\n", 2, "val=-1 is out of range"),
    ("[1] ENUM64 'e' encoding=SIGNED size=8 vlen=1\n\t'a' val=1ULL\n", 2, "suffix ULL does not match"),
    ("[1] STRUCT 's' size=4 vlen=65536\n", 1, "vlen=65536 is out of range"),
    ("[1] DECL_TAG 't' type_id=0 component_idx=-2147483649\n", 1, "component_idx=-2147483649 is out of"),
])
def test_parse_text_errors_name_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(TextError) as exc:
        parse_text(text, path="in.txt")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"in.txt:{line}: ")
    assert what in msg
    assert exc.value.line == line


# --- CLI -----------------------------------------------------------------------------------------


def invoke(*args: str | Path, input: bytes | None = None):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_cli_dump_raw_json_and_split(edge_files: dict[str, Path]) -> None:
    edge = Btf.from_bytes(edge_files["edge"].read_bytes())
    res = invoke("dump", edge_files["edge"])
    assert res.exit_code == 0 and res.stdout_bytes == raw(edge)
    res = invoke("dump", "--format", "json", edge_files["safe"])
    assert res.exit_code == 0
    assert json.loads(res.stdout_bytes) == {"types": dump_json(Btf.from_bytes(edge_files["safe"].read_bytes()))}
    base, split = split_pair()
    res = invoke("dump", "--base", edge_files["base"], edge_files["split"])
    assert res.exit_code == 0 and res.stdout_bytes == raw(split)
    res = invoke("dump", "-B", edge_files["base"], edge_files["split"])  # bpftool's spelling
    assert res.exit_code == 0 and res.stdout_bytes == raw(split)


@needs_bpftool
def test_cli_json_bytes_identical_to_bpftool(edge_files: dict[str, Path]) -> None:
    res = invoke("dump", "--format", "json", edge_files["safe"])
    assert res.stdout_bytes == bpftool_dump(edge_files["safe"], as_json=True)


def test_cli_dump_errors(edge_files: dict[str, Path], tmp_path: Path) -> None:
    res = invoke("dump", tmp_path / "missing.btf")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "missing.btf: cannot read" in res.stderr
    text = tmp_path / "text.btf"
    text.write_text("hello\n")
    res = invoke("dump", text)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "not raw BTF" in res.stderr
    trunc = tmp_path / "trunc.btf"
    trunc.write_bytes(edge_files["edge"].read_bytes()[:40])
    res = invoke("dump", trunc)
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"btfspec: invalid BTF: {trunc}: ") and "-EINVAL (22)" in res.stderr
    res = invoke("dump", "--base", trunc, edge_files["split"])
    assert res.exit_code == 1 and f"{trunc}: " in res.stderr
    res = invoke("dump", "--format", "xml", edge_files["edge"])
    assert res.exit_code == 2


def test_cli_module_elf_uses_its_btf_base(edge_files: dict[str, Path], tmp_path: Path) -> None:
    if shutil.which("objcopy") is None:
        pytest.skip("needs objcopy (binutils)")
    mod = tmp_path / "mod.o"
    subprocess.run(["objcopy", "-I", "binary", "-O", "elf64-little", "--rename-section",
                    ".data=.BTF,contents,readonly", "--add-section", f".BTF.base={edge_files['base']}",
                    str(edge_files["split"]), str(mod)], check=True, capture_output=True)
    _, split = split_pair()
    res = invoke("dump", mod)
    assert res.exit_code == 0 and res.stdout_bytes == raw(split) and res.stderr == ""
    # With --base, a module that carries a distilled .BTF.base is relocated onto it first (bpftool -B).
    from btfspec.btfgen.samples import every_kind, small_split
    from btfspec.oracle.impls.reference import distill, relocate

    full_base = every_kind().to_bytes()
    base_file = tmp_path / "full_base.btf"
    base_file.write_bytes(full_base)
    d = distill(small_split(Btf.from_bytes(full_base)).to_bytes(), full_base)
    assert d.ok, d.log
    distilled = tmp_path / "distilled.o"
    dsplit, dbase = tmp_path / "d.split", tmp_path / "d.base"
    dsplit.write_bytes(d.split)
    dbase.write_bytes(d.base)
    subprocess.run(["objcopy", "-I", "binary", "-O", "elf64-little", "--rename-section",
                    ".data=.BTF,contents,readonly", "--add-section", f".BTF.base={dbase}",
                    str(dsplit), str(distilled)], check=True, capture_output=True)
    r = relocate(d.split, d.base, full_base)
    base = Btf.from_bytes(full_base)
    res = invoke("dump", "--base", base_file, distilled)
    assert res.exit_code == 0 and res.stderr == ""
    assert res.stdout_bytes == raw(Btf.from_bytes(r.split, base))


def test_cli_sysfs_module_uses_vmlinux_as_base(edge_files: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A /sys/kernel/btf/<module> input is split on the vmlinux BTF that load_input names."""
    from btfspec.commands import text as cmd
    from btfspec.spec.sources import BtfInput, load_input

    def fake(path: str) -> BtfInput:
        if path == "/sys/kernel/btf/mod":
            return BtfInput(path, edge_files["split"].read_bytes(), None, None, "sysfs", False,
                            str(edge_files["base"]))
        return load_input(path)

    monkeypatch.setattr(cmd, "load_input", fake)
    _, split = split_pair()
    res = invoke("dump", "/sys/kernel/btf/mod")
    assert res.exit_code == 0 and res.stdout_bytes == raw(split)


def test_cli_parse_text(edge_files: dict[str, Path], tmp_path: Path) -> None:
    text = raw(Btf.from_bytes(edge_files["edge"].read_bytes()))
    src = tmp_path / "in.txt"
    src.write_bytes(text)
    out = tmp_path / "out.btf"
    res = invoke("parse-text", src, "-o", out)
    assert res.exit_code == 0, res.stderr
    assert raw(Btf.from_bytes(out.read_bytes())) == text
    res = invoke("parse-text", "-", "--endian", "big", "-o", out, input=text)
    assert res.exit_code == 0 and out.read_bytes()[:2] == b"\xeb\x9f"
    base, split = split_pair()
    src.write_bytes(raw(split))
    res = invoke("parse-text", src, "--base", edge_files["base"], "-o", out)
    assert res.exit_code == 0 and raw(Btf.from_bytes(out.read_bytes(), base=base)) == raw(split)


def test_cli_parse_text_errors_leave_no_output(tmp_path: Path) -> None:
    src = tmp_path / "bad.txt"
    src.write_bytes(GOOD.encode() + b"[2] PTR '(anon)' type_id=x\n")
    out = tmp_path / "out.btf"
    res = invoke("parse-text", src, "-o", out)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"btfspec: {src}:2: malformed PTR fields")
    assert not out.exists() and os.listdir(tmp_path) == ["bad.txt"]
    res = invoke("parse-text", tmp_path / "none.txt", "-o", out)
    assert res.exit_code == 2 and "none.txt: cannot read" in res.stderr
    res = invoke("parse-text", src)
    assert res.exit_code == 2  # -o is required


def test_cli_dump_into_closed_pipe_is_quiet(edge_files: dict[str, Path]) -> None:
    if not BTFSPEC.exists():
        pytest.skip(f"console script {BTFSPEC} is not installed")
    big = Builder()
    for i in range(20000):
        big.int(f"t{i}", 4)
    path = edge_files["edge"].with_name("big.btf")
    path.write_bytes(big.to_bytes())
    proc = subprocess.Popen([str(BTFSPEC), "dump", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"[1] INT 't0'")
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0
    assert err == b""


def test_console_dump_ends_without_teardown_and_loses_nothing(tmp_path: Path) -> None:
    """The console script leaves a finished dump with ``os._exit`` (clitools.leave_now): stdout, redirected
    to a file, still holds every line, byte for byte the in-process text, for a dump large enough for the
    forked helper; ``python -m btfspec`` does the same."""
    if not BTFSPEC.exists():
        pytest.skip(f"console script {BTFSPEC} is not installed")
    big = Builder()
    for i in range(90000):
        big.int(f"t{i}", 4)
    path = tmp_path / "big.btf"
    path.write_bytes(big.to_bytes())
    btf = Btf.from_bytes(path.read_bytes())
    assert len(btf.flat_words()[0]) >= FORK_MIN_WORDS
    want = dump_raw(btf).encode("latin-1")
    for argv in ([str(BTFSPEC)], [sys.executable, "-m", "btfspec"]):
        out = tmp_path / "out.txt"
        with open(out, "wb") as f:
            res = subprocess.run([*argv, "dump", str(path)], stdout=f, stderr=subprocess.PIPE, timeout=120)
        assert (res.returncode, res.stderr) == (0, b"")
        assert out.read_bytes() == want


def test_leave_now_only_for_the_command_process_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process callers (tests, CliRunner), another thread or an exit handler keep the normal return.
    (pytest itself registers exit handlers, and other tests may leave threads, so their counts are set here.)"""
    import atexit
    import threading

    from btfspec import clitools

    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 0)
    clitools.leave_now()
    assert exits == []  # not the btfspec process
    monkeypatch.setattr(clitools, "_AT_TOP", True)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        clitools.leave_now()
    finally:
        stop.set()
        other.join()
    assert exits == []
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # another test's thread may outlive it here
    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 1)
    clitools.leave_now()
    assert exits == []
    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 0)
    clitools.leave_now()
    assert exits == [0]
