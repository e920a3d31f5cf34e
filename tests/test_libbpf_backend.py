"""libbpf v1.6 backend (oracle.libbpf): in-process layer, crash-proof worker, and the Outcome type."""

from __future__ import annotations

import struct
import time

import pytest

from oracle import libbpf as lb
from oracle.outcome import Outcome

# Appendix A of distill-relocate-behaviour.md (A.1, with the two relocation values replaced by A.2).
VECTORS: dict[str, dict[str, str | int]] = {
    "distilled_base": {
        "base_in": (
            "9feb0100180000000000000088010000880100004d000000010000000000000104000000200000010000000000000002"
            "0100000005000000010000040800000008000000020000000000000000000000020000040c0000000800000001000000"
            "000000000b00000003000000200000000e0000000000000104000000200000001b000000020000050c00000008000000"
            "01000000000000000b00000002000000000000000000000001000005040000000800000001000000000000001e000000"
            "010000060400000021000000010000000000000001000006040000002400000002000000280000000100009308000000"
            "2100000000040000000000000000000001000093080000002100000001040000000000002d0000000100000404000000"
            "080000000100000000000000360000000100000404000000080000000100000000000000000000000100000d01000000"
            "3f0000000100000000000000000000030000000001000000010000000300000042000000010000040400000008000000"
            "01000000000000001b000000010000050400000008000000010000000000000000696e7400733100663100663200756e"
            "7369676e656420696e7400753100653100763100617631006536343100756e6e656564656400656d6265646465640070"
            "310066726f6d5f70726f746f00"
        ),
        "split_in": (
            "9feb01001800000000000000a4000000a40000001e000000000000000000000203000000000000000000000204000000"
            "000000000000000a06000000000000000000000b070000000000000000000009080000004d0000000000000809000000"
            "000000000000000a0a00000000000000000000020b000000500000000100000404000000080000000d00000000000000"
            "5e0000000000000c0e00000061000000000000080f000000000000000100000d010000003f0000001000000065740077"
            "6974685f656d62656464656400666e0061727261797479706500"
        ),
        "dist_base": (
            "9feb01001800000000000000580000005800000027000000010000000000000104000000200000010500000000000004"
            "0800000008000000000000050c0000000b00000000000006040000000e00000000000006080000001300000000000004"
            "040000001c000000000000040400000000696e74007331007531006531006536343100656d6265646465640066726f6d"
            "5f70726f746f00"
        ),
        "dist_split": (
            "9feb0100180000000000000038010000380100002e000000000000000000000202000000000000000000000214000000"
            "000000000000000a03000000000000000000000b15000000000000000000000904000000270000000000000816000000"
            "000000000000000a050000000000000000000002170000002a0000000100000404000000380000000600000000000000"
            "3b0000000000000c180000003e0000000000000819000000000000000100000d01000000480000000700000000000000"
            "020000040c0000003800000001000000000000004b000000020000002000000000000000010000050400000038000000"
            "01000000000000000000000001000006040000004e000000020000000000000001000093080000005200000001040000"
            "00000000000000000100000d010000004800000001000000000000000000000300000000010000000100000003000000"
            "657400776974685f656d62656464656400663100666e006172726179747970650070310066320061763100763100"
        ),
        "relocated_split": (
            "9feb0100180000000000000038010000380100002e00000000000000000000020300000000000000000000021e000000"
            "000000000000000a06000000000000000000000b1f0000000000000000000009080000004d0000000000000820000000"
            "000000000000000a0a0000000000000000000002210000005000000001000004040000005e0000000d00000000000000"
            "610000000000000c22000000640000000000000823000000000000000100000d010000006e0000001000000000000000"
            "020000040c0000005e00000001000000000000007100000003000000200000000000000001000005040000005e000000"
            "010000000000000000000000010000060400000074000000020000000000000001000093080000007800000001040000"
            "00000000000000000100000d010000006e00000001000000000000000000000300000000010000000100000003000000"
            "657400776974685f656d62656464656400663100666e006172726179747970650070310066320061763100763100"
        ),
    },
    "distilled_base_multi": {
        "base_in": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "080000004000000100696e7400"
        ),
        "split_in": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
        "distill_err": 0,
        "dist_base": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "080000004000000100696e7400"
        ),
        "dist_split": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
        "reloc_err": 0,
        "relocated_split": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
    },
    "distilled_base_missing_err": {
        "base_in": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "080000004000000100696e7400"
        ),
        "split_in": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
        "distill_err": 0,
        "dist_base": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "080000004000000100696e7400"
        ),
        "dist_split": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
        "reloc_base": (
            "9feb010018000000000000001000000010000000050000000100000000000001040000002000000100696e7400"
        ),
        "reloc_err": -22,
    },
    "distilled_base_multi_err": {
        "base_in": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "040000002000000100696e7400"
        ),
        "split_in": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
        "distill_err": 0,
        "dist_base": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "040000002000000100696e7400"
        ),
        "dist_split": (
            "9feb01001800000000000000180000001800000000000000000000000000000201000000000000000000000a02000000"
        ),
        "reloc_err": -22,
    },
    "distilled_base_multi_err2": {
        "base_in": (
            "9feb010018000000000000001000000010000000050000000100000000000001040000002000000100696e7400"
        ),
        "split_in": (
            "9feb010018000000000000000c0000000c00000000000000000000000000000201000000"
        ),
        "distill_err": 0,
        "dist_base": (
            "9feb010018000000000000001000000010000000050000000100000000000001040000002000000100696e7400"
        ),
        "dist_split": (
            "9feb010018000000000000000c0000000c00000000000000000000000000000201000000"
        ),
        "reloc_base": (
            "9feb01001800000000000000200000002000000005000000010000000000000104000000200000010100000000000001"
            "040000002000000100696e7400"
        ),
        "reloc_err": -22,
    },
    "distilled_base_embedded_err": {
        "base_in": (
            "9feb0100180000000000000028000000280000000b000000010000000000000104000000200000010500000001000004"
            "0400000008000000010000000000000000696e7400733100663100"
        ),
        "split_in": (
            "9feb010018000000000000001800000018000000110000000b0000000100000408000000190000000200000000000000"
            "776974685f656d62656464656400653100"
        ),
        "dist_base": (
            "9feb010018000000000000000c0000000c0000000400000001000000000000040400000000733100"
        ),
        "dist_split": (
            "9feb01001800000000000000180000001800000011000000040000000100000408000000120000000100000000000000"
            "776974685f656d62656464656400653100"
        ),
        "reloc_base": (
            "9feb0100180000000000000028000000280000000b000000010000000000000104000000200000010500000001000004"
            "0800000008000000010000000000000000696e7400733100663100"
        ),
        "reloc_err": -22,
    },
    "distilled_endianness": {
        "base_in": (
            "eb9f010000000018000000000000001000000010000000050000000101000000000000040100002000696e7400"
        ),
        "split_in": (
            "eb9f010000000018000000000000000c0000000c00000000000000000200000000000001"
        ),
        "dist_base": (
            "eb9f010000000018000000000000001000000010000000050000000101000000000000040100002000696e7400"
        ),
        "dist_split": (
            "eb9f010000000018000000000000000c0000000c00000000000000000200000000000001"
        ),
    },
    "edge_E6_ordering": {
        "base_in": (
            "9feb01001800000000000000d4000000d400000023000000010000000000000104000000200000010500000001000004"
            "040000000800000001000000000000000000000000000002020000000a00000000000010040000001000000000000008"
            "020000000000000001000004040000001300000003000000000000001500000001000006040000001800000001000000"
            "1a00000000000087000000001d0000000000001203000000000000000000000a06000000000000000000000904000000"
            "000000000100000d070000002100000008000000000000000000000300000000010000000b0000000200000000696e74"
            "007a7a006100666c6f61740074640078006161004100667700746167007100"
        ),
        "split_in": (
            "9feb0100180000000000000060000000600000000000000005000000000000080d00000000000000000000020c000000"
            "00000000000000020a000000000000000000000209000000000000000000000205000000010000000200000408000000"
            "0a0000000100000000000000150000000700000020000000"
        ),
        "dist_base": (
            "9feb01001800000000000000400000004000000014000000010000000000000104000000200000010500000000000004"
            "040000000800000000000010040000000e000000000000060400000011000000000000870000000000696e74007a7a00"
            "666c6f617400616100667700"
        ),
        "dist_split": (
            "9feb01001800000000000000e0000000e00000000b000000050000000000000813000000000000000000000212000000"
            "00000000000000021000000000000000000000020f00000000000000000000020d000000010000000200000408000000"
            "0800000001000000000000000e0000000400000020000000000000000000000202000000140000000000000802000000"
            "000000000100000404000000170000000c0000000000000019000000000000120c000000000000000000000a0e000000"
            "000000000000000903000000000000000100000d040000001d0000000500000000000000000000030000000001000000"
            "11000000020000007464007800746167007100"
        ),
        "relocated": (
            "9feb01001800000000000000e0000000e00000000b00000005000000000000081b00000000000000000000021a000000"
            "000000000000000218000000000000000000000217000000000000000000000215000000010000000200000408000000"
            "0a0000000100000000000000150000000700000020000000000000000000000202000000230000000000000802000000"
            "000000000100000404000000260000001400000000000000280000000000001214000000000000000000000a16000000"
            "000000000000000904000000000000000100000d070000002c0000000800000000000000000000030000000001000000"
            "19000000020000007464007800746167007100"
        ),
    },
    "edge_E10_no_base_refs": {
        "dist_base": "9feb0100180000000000000000000000000000000100000000",
        "dist_split": (
            "9feb010018000000000000000c0000000c000000020000000100000000000004000000007800"
        ),
    },
}


def h(case: str, key: str) -> bytes:
    value = VECTORS[case][key]
    assert isinstance(value, str)
    return bytes.fromhex(value)


def btf_blob(types: bytes, strings: bytes) -> bytes:
    """Little-endian raw BTF: 24-byte header, type section, string section."""
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings


def rec(name_off: int, kind: int, vlen: int, size_or_type: int, *extra: int) -> bytes:
    return struct.pack(f"<III{len(extra)}I", name_off, (kind << 24) | vlen, size_or_type, *extra)


INT, STRUCT, CONST = 1, 4, 10
# base: [1] INT 'int' size 4 SIGNED nr_bits 32; strings "\0int\0" (str_len 5)
Q5_BASE = btf_blob(rec(1, INT, 0, 4, (1 << 24) | 32), b"\0int\0")
# split: [2] CONST -> 2 (a self-cycle); [3] STRUCT 'outer' size 4 { m: type 2 @0 }
# split strings "outer\0m\0" continue at the base's str_len: 'outer' = 5, 'm' = 11
Q5_SPLIT = btf_blob(rec(0, CONST, 0, 2) + rec(5, STRUCT, 1, 4, 11, 2, 0), b"outer\0m\0")

DISTILL_CASES = [c for c, d in VECTORS.items() if "split_in" in d]
RELOC_OK = [("distilled_base", "relocated_split"), ("distilled_base_multi", "relocated_split"),
            ("edge_E6_ordering", "relocated")]
RELOC_ERR = {
    "distilled_base_missing_err": "distilled base BTF type 'int' [2] is not mapped to base BTF id",
    "distilled_base_multi_err": "has multiple candidates of the same size (ids [2, 1])",
    "distilled_base_multi_err2": "has multiple candidates of the same size (ids [2, 1])",
    "distilled_base_embedded_err": "distilled base BTF type 's1' [1] is not mapped to base BTF id",
}

needs_libbpf = pytest.mark.skipif(lb.unavailable_reason() is not None,
                                  reason=f"libbpf unavailable: {lb.unavailable_reason()}")


@pytest.fixture(scope="module")
def lib() -> lb.LibBpf:
    reason = lb.unavailable_reason()
    if reason:
        pytest.skip(f"libbpf unavailable: {reason}")
    return lb.get_libbpf()


@pytest.fixture(scope="module")
def worker():
    reason = lb.unavailable_reason()
    if reason:
        pytest.skip(f"libbpf unavailable: {reason}")
    with lb.LibbpfWorker(timeout=10.0) as w:
        yield w


# --- Outcome --------------------------------------------------------------------------------------

def test_outcome_json_roundtrip_and_hash() -> None:
    o = Outcome("ok", outputs={"base": b"\x9f\xeb", "split": b""}, log="x\n", impl="libbpf", detail="d")
    back = Outcome.from_json(o.to_json())
    assert back == o and hash(back) == hash(o)
    assert o.to_dict()["outputs"] == {"base": "9feb", "split": ""}
    assert o.ok and o.describe() == "ok (base 2 B, split 0 B)"


def test_outcome_describe_and_validation() -> None:
    err = Outcome("error", -22, log="libbpf: first\nlibbpf: the reason\n\n", impl="libbpf")
    assert err.describe() == "error -EINVAL (22): libbpf: the reason"
    assert str(err) == "[libbpf] error -EINVAL (22): libbpf: the reason"
    assert not err.ok
    assert Outcome("crash", detail="SIGSEGV").describe() == "crash (SIGSEGV)"
    assert Outcome("timeout", detail="killed after 1 s").describe() == "timeout (killed after 1 s)"
    with pytest.raises(ValueError):
        Outcome("bogus")
    with pytest.raises(ValueError):
        Outcome("error", 0)
    with pytest.raises(ValueError):
        Outcome("ok", -22)


# --- locating libbpf -------------------------------------------------------------------------------

def test_unavailable_reason_is_text_or_none() -> None:
    reason = lb.unavailable_reason()
    assert reason is None or "pylibbpf" in reason or "libbpf" in reason
    if reason is None:
        assert lb.libbpf_path() is not None


# --- in-process layer ------------------------------------------------------------------------------

def test_version(lib: lb.LibBpf) -> None:
    assert lib.version() == "v1.6"


def test_parse_and_roundtrip(lib: lb.LibBpf) -> None:
    base = h("distilled_base", "base_in")
    assert lib.parse(base)[:3] == (True, 0, 18)
    ok, err, cnt, _ = lib.parse(h("distilled_base", "split_in"), base)
    assert (ok, err, cnt) == (True, 0, 30)
    assert lib.raw_roundtrip(base) == base


def test_parse_garbage(lib: lb.LibBpf) -> None:
    ok, err, cnt, log = lib.parse(b"garbage" * 8)
    assert (ok, err, cnt) == (False, -22, 0)
    assert "Invalid BTF magic" in log and "input BTF failed to parse" in log
    # a split blob without its base: the string section does not start with NUL
    ok, err, _, log = lib.parse(h("distilled_base", "split_in"))
    assert (ok, err) == (False, -22) and "did you forget to provide base BTF?" in log
    with pytest.raises(lb.LibbpfError) as info:
        lib.raw_roundtrip(b"")
    assert info.value.errno == -22


def test_inprocess_tuple_api(lib: lb.LibBpf) -> None:
    rc, nb, ns, _ = lib.distill(h("distilled_base", "split_in"), h("distilled_base", "base_in"))
    assert (rc, nb, ns) == (0, h("distilled_base", "dist_base"), h("distilled_base", "dist_split"))
    rc, out, _ = lib.relocate(ns, nb, h("distilled_base", "base_in"))
    assert (rc, out) == (0, h("distilled_base", "relocated_split"))
    rc, out, log = lib.relocate(h("distilled_base_missing_err", "dist_split"),
                                h("distilled_base_missing_err", "dist_base"),
                                h("distilled_base_missing_err", "reloc_base"))
    assert (rc, out) == (-22, None) and "is not mapped to base BTF id" in log


def test_distill_of_non_reachable_base_is_empty(lib: lb.LibBpf) -> None:
    # edge_E10: base INT int, split STRUCT x size 0 -> empty distilled base (Q6 territory)
    base = h("distilled_base_multi_err2", "base_in")
    split = btf_blob(rec(5, STRUCT, 0, 0), b"x\0")
    rc, nb, ns, _ = lib.distill(split, base)
    assert (rc, nb, ns) == (0, h("edge_E10_no_base_refs", "dist_base"), h("edge_E10_no_base_refs", "dist_split"))


# --- worker ----------------------------------------------------------------------------------------

@needs_libbpf
@pytest.mark.parametrize("case", DISTILL_CASES)
def test_worker_distill_vectors(worker: lb.LibbpfWorker, case: str) -> None:
    out = worker.distill(h(case, "split_in"), h(case, "base_in"))
    assert out.status == "ok", out.describe()
    assert out.impl == "libbpf"
    assert out.outputs == {"base": h(case, "dist_base"), "split": h(case, "dist_split")}


@needs_libbpf
@pytest.mark.parametrize("case,key", RELOC_OK)
def test_worker_relocate_vectors(worker: lb.LibbpfWorker, case: str, key: str) -> None:
    dist_split = h(case, "dist_split")
    out = worker.relocate(dist_split, h(case, "dist_base"), h(case, "base_in"))
    assert out.status == "ok", out.describe()
    assert out.outputs == {"split": h(case, key)}
    assert out.outputs["split"][:24] == dist_split[:24]  # the header is unchanged by relocation


@needs_libbpf
@pytest.mark.parametrize("case", sorted(RELOC_ERR))
def test_worker_relocate_errors(worker: lb.LibbpfWorker, case: str) -> None:
    target = h(case, "reloc_base") if "reloc_base" in VECTORS[case] else h(case, "base_in")
    out = worker.relocate(h(case, "dist_split"), h(case, "dist_base"), target)
    assert (out.status, out.errno, out.outputs) == ("error", VECTORS[case]["reloc_err"], {})
    assert out.errno == -22
    assert RELOC_ERR[case] in out.log
    assert out.describe().startswith("error -EINVAL (22): libbpf: distilled base BTF type")


@needs_libbpf
def test_worker_parse_errors(worker: lb.LibbpfWorker) -> None:
    out = worker.parse(b"\x00" * 40)
    assert (out.status, out.errno) == ("error", -22)
    assert "Invalid BTF magic" in out.log and out.detail == "parse failed: input"
    out = worker.parse(h("distilled_base", "split_in"), h("distilled_base", "base_in"))
    assert out.ok and out.detail == "type_cnt=30"
    out = worker.distill(b"junk", h("distilled_base", "base_in"))
    assert (out.status, out.errno, out.detail) == ("error", -22, "parse failed: split")
    out = worker.relocate(h("distilled_base", "dist_split"), b"", h("distilled_base", "base_in"))
    assert (out.status, out.errno, out.detail) == ("error", -22, "parse failed: distilled_base")
    out = worker.roundtrip(h("distilled_endianness", "base_in"))
    assert out.ok and out.outputs == {"raw": h("distilled_endianness", "base_in")}


@needs_libbpf
def test_worker_rejects_programming_errors(worker: lb.LibbpfWorker) -> None:
    with pytest.raises(ValueError):
        worker.call("nonsense")
    with pytest.raises(TypeError):
        worker.call("parse", "not bytes")
    with pytest.raises(TypeError):
        worker.call("relocate", b"", b"")


@needs_libbpf
def test_worker_is_reused_and_fast(worker: lb.LibbpfWorker) -> None:
    assert worker.call("version").detail == "v1.6"
    pid = worker.pid
    split, base = h("distilled_base", "split_in"), h("distilled_base", "base_in")
    inside = []
    start = time.perf_counter()
    for _ in range(50):
        assert worker.distill(split, base).ok
        inside.append(worker.last_worker_seconds)
    per_call = (time.perf_counter() - start) / 50
    assert worker.pid == pid
    assert min(inside) < 1e-3  # a small distill takes well under 1 ms inside the worker
    assert per_call < 0.05


@needs_libbpf
def test_worker_survives_crash(worker: lb.LibbpfWorker) -> None:
    assert worker.call("ping").ok
    old_pid = worker.pid
    out = worker.call("crash")
    assert (out.status, out.detail, out.errno) == ("crash", "SIGSEGV", 0)
    assert "Segmentation fault" in out.log and "died (SIGSEGV) during 'crash'" in out.log
    assert worker.pid is None
    assert worker.call("ping").ok
    assert worker.pid not in (None, old_pid)


@needs_libbpf
def test_worker_survives_hang(worker: lb.LibbpfWorker) -> None:
    start = time.monotonic()
    out = worker.call("sleep", timeout=1.0)
    elapsed = time.monotonic() - start
    assert out.status == "timeout" and out.errno == 0
    assert 0.9 <= elapsed < 5.0
    assert worker.call("ping").ok


@needs_libbpf
def test_q5_cyclic_modifier_relocation_hangs(worker: lb.LibbpfWorker) -> None:
    assert worker.parse(Q5_SPLIT, Q5_BASE).ok
    dist = worker.distill(Q5_SPLIT, Q5_BASE)
    assert dist.ok, dist.describe()
    out = worker.relocate(dist.outputs["split"], dist.outputs["base"], Q5_BASE, timeout=1.0)
    assert out.status == "timeout"
    assert worker.distill(Q5_SPLIT, Q5_BASE).outputs == dist.outputs  # fresh worker, same answer


def test_worker_close_is_idempotent() -> None:
    if lb.unavailable_reason():
        pytest.skip(f"libbpf unavailable: {lb.unavailable_reason()}")
    w = lb.LibbpfWorker()
    assert w.pid is None  # started lazily
    assert w.call("ping").ok
    proc = w._proc
    w.close()
    w.close()
    assert w.pid is None and proc is not None and proc.returncode == 0
