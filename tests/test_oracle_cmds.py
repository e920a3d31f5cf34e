"""Tests for ``btfspec distill / relocate / compare`` (oracle.kernels.kmodule, oracle.kernels.btfids) and
``bench oracle``."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from btfspec.bench.timing import Row, as_dict, best_of
from btfspec.cli import main
from btfspec.oracle.impls import reference
from btfspec.oracle.kernels import btfids
from btfspec.oracle.kernels.kmodule import relocated_view
from btfspec.spec.builder import Builder
from btfspec.spec.elf import read_sections, write_sections
from btfspec.spec.errors import InputError
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf
from btfspec.spec.permute import is_name_sorted
from btfspec.spec.sources import load_input
from tests.helpers import appendix_hex

if not (shutil.which("gcc") and shutil.which("objcopy")):
    pytest.skip("needs gcc and objcopy (binutils) to build the module fixture", allow_module_level=True)

try:
    from btfspec.oracle.impls.libbpf import unavailable_reason

    LIBBPF_WHY = unavailable_reason()
except ImportError as exc:  # pragma: no cover - the module is part of the project
    LIBBPF_WHY = str(exc)
needs_libbpf = pytest.mark.skipif(LIBBPF_WHY is not None, reason=f"libbpf unavailable: {LIBBPF_WHY}")

# .BTF_ids laid out like include/linux/btf_ids.h: a BTF_ID_LIST with an unused slot, a BTF_SET and a
# BTF_SET8 (pairs deliberately unsorted), with hand-filled ids instead of resolve_btfids' zeros.
_C = r'''
#define ID(sym, val) asm(".pushsection .BTF_ids,\"a\"\n.local " #sym "\n.type " #sym ", STT_OBJECT\n" \
                         ".size " #sym ", 4\n" #sym ":\n.long " #val "\n.popsection\n");
#define RAW(text) asm(".pushsection .BTF_ids,\"a\"\n" text "\n.popsection\n");
RAW(".local list1\nlist1:")
ID(__BTF_ID__struct__foo__1, {foo})
RAW(".long 0")
ID(__BTF_ID__typedef__bar__2, {bar})
ID(__BTF_ID__struct__mod_s__3, {ms})
ID(__BTF_ID__struct__unused__8, {unused})
RAW(".local set1\nset1:\n.local __BTF_ID__set__set1\n__BTF_ID__set__set1:\n.long 2")
ID(__BTF_ID__func__f1__4, {f1})
ID(__BTF_ID__func__f2__5, {f2})
RAW(".size __BTF_ID__set__set1, .-set1")
RAW(".local kset\nkset:\n.local __BTF_ID__set8__kset\n__BTF_ID__set8__kset:\n.long 2\n.long 1")
ID(__BTF_ID__func__f2__6, {f2})
RAW(".long 0x11")
ID(__BTF_ID__func__f1__7, {f1})
RAW(".long 0x22")
RAW(".size __BTF_ID__set8__kset, .-kset")
int module_data = 1;
'''

# A cmd "implementation" that distills correctly and then grows the first split type by 8 bytes.
_BAD_DISTILL = '''
import sys
from btfspec.oracle.impls.reference import distill
from btfspec.spec.model import Btf
split, base, out_base, out_split = sys.argv[1:5]
r = distill(open(split, "rb").read(), open(base, "rb").read())
ns = Btf.from_bytes(r.split, base=Btf.from_bytes(r.base))
ns.type(ns.start_id).size_type += 8
open(out_base, "wb").write(r.base)
open(out_split, "wb").write(ns.to_bytes())
'''


def _base(path: Path, foo_sizes: tuple[int, ...] = (8,), extra: bool = True) -> bytes:
    """[1] int, then a struct foo per size; with ``extra``: typedef bar, struct unused, foo *."""
    b = Builder()
    i = b.int("int", 4, 1)
    foos = [b.struct("foo", size, [("a", i, 0, 0), ("b", i, 32, 0)]) for size in foo_sizes]
    if extra:
        b.typedef("bar", i)
        b.struct("unused", 4, [("x", i, 0, 0)])
        b.ptr(foos[0])
    blob = b.to_bytes()
    path.write_bytes(blob)
    return blob


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """base.btf, split.btf and mod.o (a gcc-built object with .BTF and .BTF_ids) plus the type ids."""
    d = tmp_path_factory.mktemp("module")
    base = _base(d / "base.btf")
    bb = Btf.from_bytes(base)
    foo, bar, unused = (bb.find_by_name(n)[0] for n in ("foo", "bar", "unused"))
    (pfoo,) = [i for i, t in bb.own_types() if t.kind == Kind.PTR]
    s = Builder(bb)
    ms = s.struct("mod_s", 24, [("f", foo, 0, 0), ("p", pfoo, 64, 0), ("t", bar, 128, 0)])
    proto = s.func_proto(1, [("s", s.ptr(ms))])
    f1, f2 = s.func("f1", proto, 1), s.func("f2", proto, 1)
    split = s.to_bytes()
    (d / "split.btf").write_bytes(split)
    ids = {"foo": foo, "bar": bar, "ms": ms, "unused": unused, "f1": f1, "f2": f2}
    (d / "mod.c").write_text(_C.format(**ids))
    subprocess.run(["gcc", "-c", "-O2", str(d / "mod.c"), "-o", str(d / "mod0.o")], check=True,
                   capture_output=True)
    write_sections(d / "mod0.o", d / "mod.o", {".BTF": split})
    _base(d / "nofoo.btf", foo_sizes=(), extra=False)
    _base(d / "bigfoo.btf", foo_sizes=(16,), extra=False)
    _base(d / "twofoo.btf", foo_sizes=(8, 8), extra=False)
    (d / "bad_distill.py").write_text(_BAD_DISTILL)
    return {"dir": d, "base": base, "split": split, "ids": ids}


def cli(*args: object) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def slots(path: Path) -> dict[str, int]:
    data = path.read_bytes()
    layout = btfids.parse_layout(data, str(path))
    assert layout is not None
    return {slot.symbol: v for slot, v in btfids.read_ids(read_sections(data)[".BTF_ids"], layout)}


def set8_pairs(path: Path) -> list[tuple[int, int]]:
    data = read_sections(path)[".BTF_ids"]
    layout = btfids.parse_layout(path.read_bytes())
    assert layout is not None
    (kset,) = [s for s in layout.sets if s.kind == "set8"]
    return [struct.unpack_from("<II", data, kset.entries_offset + 8 * i) for i in range(kset.count)]


# --------------------------------------------------------------------------------------------------
# .BTF_ids layout
# --------------------------------------------------------------------------------------------------

def test_layout_follows_btf_ids_h(mod: dict) -> None:
    layout = btfids.parse_layout((mod["dir"] / "mod.o").read_bytes(), "mod.o")
    assert layout is not None
    assert [(s.name, s.kind, s.offset, s.count) for s in layout.sets] == [("set1", "set", 20, 2),
                                                                          ("kset", "set8", 32, 2)]
    # the BTF_ID_UNUSED word (offset 4), set headers and set8 flags are not id slots
    assert [s.offset for s in layout.slots] == [0, 8, 12, 16, 24, 28, 40, 48]
    assert layout.slots[0].what == "struct foo"


def test_stripped_module_is_refused(mod: dict, tmp_path: Path) -> None:
    stripped = tmp_path / "stripped.o"
    subprocess.run(["objcopy", "--strip-all", str(mod["dir"] / "mod.o"), str(stripped)], check=True)
    code, _, err = cli("distill", stripped, "--base", mod["dir"] / "base.btf", "-o", tmp_path / "out.ko")
    assert code == 2 and "no symbol table" in err
    assert not (tmp_path / "out.ko").exists()


# --------------------------------------------------------------------------------------------------
# distill / relocate on an ELF module
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def distilled(mod: dict) -> Path:
    d = mod["dir"]
    code, out, err = cli("distill", d / "mod.o", "--base", d / "base.btf", "-o", d / "out.ko")
    assert code == 0, err
    assert "8 id(s) remapped" in out and "1 unresolved" in out
    # resolve_btfids -B leaves such an id unresolved too
    assert "STRUCT 'unused' is a base type the split does not use" in err
    return d / "out.ko"


def test_distill_writes_btf_base_and_remapped_ids(mod: dict, distilled: Path) -> None:
    ref = reference.distill(mod["split"], mod["base"])
    secs = read_sections(distilled)
    assert secs[".BTF"] == ref.split and secs[".BTF.base"] == ref.base
    before, after = slots(mod["dir"] / "mod.o"), slots(distilled)
    for sym, old in before.items():
        want = ref.id_map[old] if sym != "__BTF_ID__struct__unused__8" else 0
        if sym.startswith("__BTF_ID__func__"):  # sets are re-sorted: compare as multisets below
            continue
        assert after[sym] == want, sym
    assert after["__BTF_ID__struct__foo__1"] != 0 and ref.id_map[mod["ids"]["unused"]] == 0
    f1, f2 = ref.id_map[mod["ids"]["f1"]], ref.id_map[mod["ids"]["f2"]]
    assert set8_pairs(distilled) == sorted([(f2, 0x11), (f1, 0x22)])  # flags travel with their id
    # everything that is not an id slot is untouched
    old_data, new_data = read_sections(mod["dir"] / "mod.o")[".BTF_ids"], secs[".BTF_ids"]
    for off in (4, 20, 32, 36):
        assert old_data[off:off + 4] == new_data[off:off + 4]


def _what(btf: Btf, tid: int) -> tuple[str, str]:
    """A type told apart from its id: kind and name."""
    t = btf.type(tid)
    return t.kind_name, btf.name(t)


def test_distill_sort_rewrites_ids_to_the_sorted_split(mod: dict, distilled: Path, tmp_path: Path) -> None:
    """--sort -o: the split is name-sorted and every .BTF_ids slot names the same type as without the sort
    (resolve_btfids resolves ids after sorting)."""
    d, out = mod["dir"], tmp_path / "sorted.ko"
    code, _, err = cli("distill", d / "mod.o", "--base", d / "base.btf", "--sort", "-o", out)
    assert code == 0, err
    plain, srt = read_sections(distilled), read_sections(out)
    assert srt[".BTF.base"] == plain[".BTF.base"]
    dist = Btf.from_bytes(plain[".BTF.base"])
    plain_btf, sorted_btf = Btf.from_bytes(plain[".BTF"], dist), Btf.from_bytes(srt[".BTF"], dist)
    assert is_name_sorted(sorted_btf) and srt[".BTF"] != plain[".BTF"]
    before, after = slots(distilled), slots(out)
    moved = 0
    for sym, old in before.items():
        if sym.startswith("__BTF_ID__func__"):  # set members are re-sorted by id: compared below
            continue
        assert (after[sym] == 0) == (old == 0), sym
        if old:
            assert _what(sorted_btf, after[sym]) == _what(plain_btf, old), sym
            moved += after[sym] != old
    assert moved  # the sort moved at least one slot's type
    names = {_what(sorted_btf, i): flags for i, flags in set8_pairs(out)}
    assert names == {_what(plain_btf, i): flags for i, flags in set8_pairs(distilled)}
    assert [i for i, _ in set8_pairs(out)] == sorted(i for i, _ in set8_pairs(out))


def test_relocate_back_restores_ids(mod: dict, distilled: Path) -> None:
    d = mod["dir"]
    code, out, err = cli("relocate", distilled, "--base", d / "base.btf", "-o", d / "back.ko")
    assert code == 0, err
    secs = read_sections(d / "back.ko")
    assert ".BTF.base" not in secs
    dist = read_sections(distilled)
    assert secs[".BTF"] == reference.relocate(dist[".BTF"], dist[".BTF.base"], mod["base"]).split
    before, after = slots(d / "mod.o"), slots(d / "back.ko")
    for sym in ("__BTF_ID__struct__foo__1", "__BTF_ID__struct__mod_s__3"):
        assert after[sym] == before[sym]
    assert after["__BTF_ID__struct__unused__8"] == 0
    assert sorted(set8_pairs(d / "back.ko")) == sorted(set8_pairs(d / "mod.o"))
    # the typedef went into the split as a copy: the id now names that copy
    relocated = Btf.from_bytes(secs[".BTF"], base=Btf.from_bytes(mod["base"]))
    t = relocated.type(after["__BTF_ID__typedef__bar__2"])
    assert t.kind == Kind.TYPEDEF and relocated.name(t) == "bar"


@needs_libbpf
def test_distill_with_libbpf_matches_python(mod: dict, distilled: Path, tmp_path: Path) -> None:
    out = tmp_path / "lib.ko"
    code, _, err = cli("distill", mod["dir"] / "mod.o", "--base", mod["dir"] / "base.btf", "--impl", "libbpf",
                       "-o", out)
    assert code == 0, err
    assert read_sections(out) == read_sections(distilled)


def test_relocated_view_for_dump(mod: dict, distilled: Path) -> None:
    inp = load_input(str(distilled))
    assert relocated_view(inp, mod["base"]) == reference.relocate(inp.btf, inp.base, mod["base"]).split
    plain = load_input(str(mod["dir"] / "mod.o"))
    assert relocated_view(plain, mod["base"]) == plain.btf


# --------------------------------------------------------------------------------------------------
# raw files
# --------------------------------------------------------------------------------------------------

def test_raw_distill_and_relocate(mod: dict, tmp_path: Path) -> None:
    d = mod["dir"]
    ob, os_, rel = tmp_path / "b.btf", tmp_path / "s.btf", tmp_path / "r.btf"
    code, out, err = cli("distill", d / "split.btf", "--base", d / "base.btf", "--out-base", ob, "--out-split", os_,
                         "--json")
    assert code == 0, err
    assert json.loads(out)["outputs"]["base"]["types"] == 2
    ref = reference.distill(mod["split"], mod["base"])
    assert ob.read_bytes() == ref.base and os_.read_bytes() == ref.split
    code, _, err = cli("relocate", os_, "--distilled-base", ob, "--base", d / "base.btf", "-o", rel)
    assert code == 0, err
    assert rel.read_bytes() == reference.relocate(ref.split, ref.base, mod["base"]).split


# --------------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------------

@needs_libbpf
def test_compare_python_libbpf_agree(mod: dict, distilled: Path) -> None:
    code, out, err = cli("compare", mod["dir"] / "mod.o", "--base", mod["dir"] / "base.btf")
    assert code == 0, err
    assert "all implementations agree" in out and "relocate libbpf" in out
    code, out, _ = cli("compare", distilled, "--base", mod["dir"] / "base.btf", "--impl", "python,libbpf",
                       "--json")
    report = json.loads(out)
    assert code == 0 and report["agree"] and list(report["stages"]) == ["relocate"]


def test_compare_reports_a_disagreement_with_text(mod: dict) -> None:
    d = mod["dir"]
    template = f"{sys.executable} {d / 'bad_distill.py'} {{split}} {{base}} {{out_base}} {{out_split}}"
    code, out, _ = cli("compare", d / "mod.o", "--base", d / "base.btf", "--impl", "python,cmd",
                       "--distill-cmd", template)
    assert code == 1
    assert "DISAGREE at distill (python vs cmd)" in out
    assert "-[3] STRUCT 'mod_s' size=24 vlen=3" in out and "+[3] STRUCT 'mod_s' size=32 vlen=3" in out


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("base", "words"), [
    ("nofoo.btf", ["distilled base BTF type 'foo' [2] is not mapped", "no type named 'foo'"]),
    ("bigfoo.btf", ["'foo' [2] is not mapped", "embedded by value", "size 16"]),
    ("twofoo.btf", ["'foo' [2], size 8 has multiple candidates of the same size (ids [3, 2])"]),
])
def test_relocation_errors_name_the_type(mod: dict, distilled: Path, tmp_path: Path, base: str,
                                         words: list[str]) -> None:
    out = tmp_path / "x.ko"
    code, _, err = cli("relocate", distilled, "--base", mod["dir"] / base, "-o", out)
    assert code == 1
    assert err.startswith("btfspec: relocation failed [python]: -EINVAL (22): ")
    assert err.count("\n") == 1 and "Traceback" not in err
    for w in words:
        assert w in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".x.ko")]


@needs_libbpf
def test_a_relocation_that_hangs_libbpf_ends_at_once_and_says_why(tmp_path: Path) -> None:
    """libbpf loops forever on a cyclic modifier chain below a member (Q5, corpus case E13); the reference
    predicts it, so ``relocate``/``compare --impl libbpf`` give libbpf a moment, not the 10 s ``--timeout``."""
    case = Path(__file__).resolve().parent.parent / "corpus" / "cases" / "E13-const-cycle-hangs-relocate"
    out = tmp_path / "x.btf"
    start = time.monotonic()
    code, _, err = cli("relocate", case / "distill.split.btf", "--distilled-base", case / "distill.base.btf",
                       "--base", case / "base.btf", "--impl", "libbpf", "-o", out)
    assert code == 1 and not out.exists() and err.count("\n") == 1, err
    assert err.startswith("btfspec: relocation failed [libbpf]: did not finish (killed after ")
    assert "the hang the Python reference predicts: Q5:" in err
    code, text, _ = cli("compare", case / "split.btf", "--base", case / "base.btf", "--impl", "python,libbpf")
    assert code == 0 and "known libbpf quirk Q5" in text  # the hang is the quirk python-vs-libbpf excuses
    assert time.monotonic() - start < 8, "libbpf was given the whole --timeout"


def test_usage_and_input_errors(mod: dict, tmp_path: Path) -> None:
    d = mod["dir"]
    cases = [
        (("relocate", tmp_path / "missing.ko", "--base", d / "base.btf", "-o", tmp_path / "o"), "cannot read"),
        (("distill", d / "mod.o", "--base", d / "base.btf", "--impl", "nope", "-o", tmp_path / "o.ko"),
         "unknown implementation 'nope'"),
        (("distill", d / "split.btf", "--out-base", tmp_path / "a", "--out-split", tmp_path / "b"), "give --base"),
        (("distill", d / "split.btf", "--base", d / "base.btf", "-o", tmp_path / "o.ko"), "needs an ELF input"),
        (("relocate", d / "split.btf", "--base", d / "base.btf", "-o", tmp_path / "o"), "--distilled-base"),
        (("compare", d / "mod.o", "--base", d / "base.btf", "--impl", "python"), "at least two"),
    ]
    for argv, words in cases:
        code, _, err = cli(*argv)
        assert code == 2, (argv, err)
        assert words in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_bad_btf_ids_symbol_is_an_input_error() -> None:
    layout = btfids.BtfIdsLayout(8, "<", (btfids.IdSlot(0, "__BTF_ID__struct__x__1"),))
    with pytest.raises(InputError, match="holds type id 99"):
        btfids.remap(struct.pack("<II", 99, 0), layout, lambda i: i, limit=10)


# --------------------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------------------

def test_bench_oracle_prints_ratios(mod: dict) -> None:
    code, out, err = cli("bench", "oracle", "--split", mod["dir"] / "split.btf", "--base", mod["dir"] / "base.btf",
                         "--repeat", "1")
    assert code == 0, err
    assert "python distill" in out and "python relocate" in out


def test_bench_rows_show_the_best_run_and_the_spread() -> None:
    runs = iter([0.03, 0.01, 0.02])
    t = best_of(lambda: time.sleep(next(runs)), 3)
    assert 0.01 <= t < 0.02 and 0.5 < t.spread < 3.5  # best 10 ms, worst 30 ms: spread ~200 %
    row = Row("x", t, "base", 0.005, 1.5)
    assert "spread" in row.line() and "NOT met" in row.line()
    (d,) = as_dict([row])
    assert d["spread"] == t.spread and d["ratio"] == pytest.approx(t / 0.005)


def test_bench_startup_times_whole_processes_against_their_targets(tmp_path: Path) -> None:
    (tmp_path / "base.btf").write_bytes(appendix_hex("distilled_base", "base_in"))
    code, out, err = cli("bench", "startup", "--input", tmp_path / "base.btf", "--repeat", "1", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert rows["btfspec --help"]["target_seconds"] == 0.2 and rows["btfspec --help"]["seconds"] > 0
    assert rows["btfspec dump"]["seconds"] > rows["python -c pass (baseline)"]["seconds"]  # a process each
    assert "target <= 200 ms: NOT met" in Row("x", 0.25, target_seconds=0.2).line()
