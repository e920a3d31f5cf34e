"""pahole as a second direct encoder (btfspec.btfgen.c_emit, btfspec.oracle.fuzz.pahole).

* the C subset rewriting is idempotent and what it emits compiles;
* pahole's encoding (gcc 12 + pahole 1.24) of a generated universe is equivalent to the direct
  encoder's (base and split), so the two encoders check each other;
* property P1 with pahole as the direct encoding: distill (python and libbpf) pahole's split on pahole's
  base and relocate it onto pahole's base (round trip) and onto pahole's encoding of a perturbed kernel
  part; the result must be what the label says (equivalent to pahole's own split of the module against
  the new base, the labelled errno, or different only at copied types).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from btfspec.btfgen.c_emit import C_INTS, Unexpressible, c_universe, emit_c, expressible
from btfspec.btfgen.generate import universes
from btfspec.btfgen.perturb import perturbed_bases
from btfspec.btfgen.universe import (
    KERNEL_VALID,
    Array,
    Composite,
    DeclTag,
    Enum,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Member,
    Ptr,
    Qual,
    Typedef,
    TypeTag,
    Universe,
    Var,
)
from btfspec.oracle.fuzz import pahole
from btfspec.oracle.impls.adapter import PythonImpl
from btfspec.oracle.impls.quirks import Q6
from btfspec.spec.kinds import INT_CHAR, INT_SIGNED, Kind
from btfspec.spec.model import Btf

WHY = pahole.unavailable_reason()
if WHY is not None:
    pytest.skip(f"pahole as an encoder: {WHY}", allow_module_level=True)

RUN = settings(derandomize=True, database=None, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def impls() -> list:
    from btfspec.oracle.impls.adapter import close_impls, make_impls
    from btfspec.oracle.impls.libbpf import unavailable_reason

    names = ["python"] + (["libbpf"] if unavailable_reason() is None else [])
    made = make_impls(names)
    yield made
    close_impls(made)


def _pahole_case(u: Universe) -> pahole.PaholeCase:
    try:
        return pahole.pahole_case(u)
    except Unexpressible:
        assume(False)
        raise


# --------------------------------------------------------------------------------------------------
# the C subset, by hand
# --------------------------------------------------------------------------------------------------

def _hand_universe() -> Universe:
    """Every kind, including the ones C/pahole cannot express as they are."""
    nodes = [
        Int("i", "int", 4, INT_SIGNED), Int("c", "char", 1, INT_CHAR), Int("b", "int:3", 4, INT_SIGNED, bits=3),
        Float("f", "double", 8), Float("f80", "__float80", 12),
        Enum("e", "mode", 1, (("A", 1), ("B", 200))), Enum("e8", "wide", 8, (("W", 1),)),
        Composite("s", "dev", 12, (Member("id", "i", 0), Member("flag", "c", 32, 3), Member("bits", "b", 64, 0))),
        Composite("u", "un", 12, (Member("a", "i", 0), Member("b", "c", 0))), Ptr("pu", "u"),
        Composite("x", "uses_f80", 16, (Member("x", "f80", 0),)),
        Array("arr", "s", "c", 2), Array("arr2", "arr", "i", 3), Ptr("p", "s"), Qual("q", Kind.CONST, "q2"),
        Qual("q2", Kind.VOLATILE, "i"), Qual("r", Kind.RESTRICT, "i"), Typedef("t", "dev_t", "s"),
        TypeTag("tt", "user", "p"), Fwd("fw", "opaque"), FuncProto("fp", "i", (("a", "i"), ("b", "p"))),
        Func("fn", "dev_probe", "fp", 1), Var("v", "counter", "i", 1), DeclTag("dt", "tag", "fn"),
        Composite("m", "mod", 104, (Member("d", "t", 0), Member("arr", "arr2", 96), Member("p", "tt", 704),
                                    Member("e", "e", 768))),
        Ptr("mp", "m"), FuncProto("mfp", None, (("m", "mp"),)), Func("mfn", "mod_init", "mfp", 1),
    ]
    return Universe(tuple(nodes), frozenset({"m", "mp", "mfp", "mfn"}), KERNEL_VALID)


def test_c_universe_rewrites_what_c_cannot_express() -> None:
    cu = c_universe(_hand_universe())
    assert c_universe(cu) == cu and expressible(cu)
    by = {n.key: n for n in cu.nodes}
    # tags, the var, __float80 and its user, the bit-width INT, restrict on an int, a union of impossible size
    assert not {"tt", "v", "dt", "f80", "x", "b", "r", "u"} & set(by)
    assert by["c"] == Int("c", "char", 1, INT_SIGNED)  # pahole writes char as a signed INT
    assert by["s"].members[2].type == "i"  # the bit-width INT became its C type
    assert by["q"].target == "i"  # no qualifier on a qualifier
    assert by["fn"].linkage == 0  # pahole 1.24 writes every FUNC static
    assert by["arr2"] == Array("arr2", "s", "i", 6)  # pahole flattens arrays of arrays; index type int
    assert by["e8"].wide and by["m"].members[2].type == "p"  # ENUM size 8 is ENUM64; the type tag dropped
    names = {n.name for n in cu.nodes if isinstance(n, Int)}
    assert {"unsigned char", "long unsigned int"} <= names <= set(C_INTS)  # enum underlying type, sizetype
    src = emit_c(cu)
    assert "__attribute__((mode(QI)))" in src.module or "__attribute__((mode(QI)))" in src.header
    assert "#include \"kernel.h\"" in src.module and "mod_init(" in src.module and "dev_probe(" in src.kernel


def test_pahole_encodes_the_hand_universe_like_the_direct_encoder() -> None:
    pc = pahole.pahole_case(_hand_universe())
    assert pahole.encoder_difference(pc) is None
    base = Btf.from_bytes(pc.base)
    kinds = {base.type(i).kind for i in range(1, base.type_cnt)}
    assert Kind.FLOAT in kinds and Kind.ENUM64 in kinds and Kind.FWD in kinds and Kind.FUNC in kinds
    assert Kind.VAR not in kinds and Kind.DECL_TAG not in kinds and Kind.TYPE_TAG not in kinds
    (char,) = base.find_by_name("char")
    assert base.type(char).int_encoding == INT_SIGNED
    (dev,) = base.find_by_name("dev")
    assert base.type(dev).size == 12 and base.type(dev).kflag  # exact layout, bitfield member
    split = Btf.from_bytes(pc.split, base=base)
    assert [split.name(t) for _, t in split.own_types() if t.kind == Kind.FUNC] == ["mod_init"]


def test_gcc_failure_names_the_source() -> None:
    from btfspec.btfgen.c_emit import CSources

    with pytest.raises(pahole.PaholeError, match="gcc kernel.c") as info:
        pahole.encode_sources(CSources("", "this is not C;", ""))
    assert "this is not C" in str(info.value)


# --------------------------------------------------------------------------------------------------
# generated universes
# --------------------------------------------------------------------------------------------------

@settings(RUN, max_examples=20)
@given(u=universes(KERNEL_VALID, 5, 60))
def test_pahole_is_a_second_direct_encoder(u: Universe, impls: list) -> None:
    pc = _pahole_case(u)
    assert c_universe(pc.universe) == pc.universe
    assert pahole.encoder_difference(pc) is None
    # a module that needs no base type has an empty distilled base: libbpf's Q6 (and the reference
    # imitating it) writes a split that does not parse -- a libbpf finding, not an encoder's
    assume(Q6 not in PythonImpl().distill(pc.split, pc.base).detail.split(","))
    for impl in impls:
        assert pahole.round_trip_difference(pc, impl) is None, impl.name


@settings(RUN, max_examples=30)
@given(data=st.data())
def test_p1_with_pahole_as_the_direct_encoding(data: st.DataObject, impls: list) -> None:
    pc = _pahole_case(data.draw(universes(KERNEL_VALID, 5, 50), label="universe"))
    # as above: an empty distilled base is libbpf's Q6 (the reference imitates it), not an encoder's finding
    assume(Q6 not in PythonImpl().distill(pc.split, pc.base).detail.split(","))
    _, p = data.draw(perturbed_bases(pc.direct, pahole.PERTURBATION_KINDS), label="perturbation")
    rc = pahole.pahole_relocation(pc, p)
    assume(rc is not None)
    assert rc is not None
    event(f"{p.label}: {p.kind}")
    assert (rc.split2 is None) == (p.label == "error")
    for impl in impls:
        assert pahole.relocation_difference(pc, rc, impl) is None, impl.name
