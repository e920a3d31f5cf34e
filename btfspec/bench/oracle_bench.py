"""``btfspec bench oracle``: distill and relocate of a module-sized split, Python reference vs libbpf.

Both sides run end to end on bytes (parsing the full base included): the reference's
``distill``/``relocate`` against libbpf's ``btf__new`` + ``btf__distill_base`` / ``btf__relocate`` +
``btf__raw_data`` in process; the "base parsed once" rows let the reference keep its parse of the
base between calls, as it does over a kernel's modules (libbpf's rows still parse it every call).
The default input is a deterministic ~300-type split built against the host vmlinux
(:func:`build_module`). :func:`run_kernel_vm` adds the guest's module loader (``kernel-vm``): boot
seconds and relocations/s beside libbpf, onto the guest's vmlinux.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from btfspec.bench.timing import Row, best_of
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED, Kind
from btfspec.spec.model import Btf

TARGET = 20.0
WARM_TARGET = 2.0  # the reference keeps its parse of a large base (libbpf's rows parse it every call)
# vmlinux types a typical module uses; missing ones are skipped (the result stays deterministic).
EMBEDDED = ("list_head", "spinlock_t", "mutex", "atomic_t", "refcount_t", "work_struct", "hlist_node",
            "rb_node", "wait_queue_head_t", "timer_list")
POINTED = ("task_struct", "file", "inode", "sk_buff", "net_device", "device", "module", "page")
SCALARS = ("u8", "u32", "u64", "pid_t", "size_t", "bool", "gfp_t", "int", "long unsigned int", "char")
_CHAIN = (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG)


def _first(base: Btf, name: str) -> int | None:
    ids = [i for i in base.find_by_name(name) if base.type(i).kind != Kind.FWD]
    return ids[0] if ids else None


def _size(btf: Btf, tid: int) -> int:
    t = btf.type(tid)
    while t.kind in _CHAIN:
        tid = t.type
        t = btf.type(tid)
    if t.kind == Kind.PTR:
        return 8
    if t.kind == Kind.ARRAY:
        return t.fixed[2] * _size(btf, t.fixed[0])
    return t.size


def build_module(vmlinux: bytes, n_structs: int = 50) -> bytes:
    """A split of about ``6 * n_structs`` types on ``vmlinux``: structs embedding and pointing at real
    vmlinux types (list_head, mutex, task_struct, ...), typedefs, arrays, func protos and funcs."""
    base = Btf.from_bytes(vmlinux)
    emb = [i for i in (_first(base, n) for n in EMBEDDED) if i is not None]
    ptd = [i for i in (_first(base, n) for n in POINTED) if i is not None]
    sca = [i for i in (_first(base, n) for n in SCALARS) if i is not None]
    if not emb or not ptd or not sca:
        raise ValueError("the base lacks the common kernel types (list_head, task_struct, u32, ...)")
    b = Builder(base)
    int_id = _first(base, "int") or sca[0]
    char_id = _first(base, "char") or sca[0]
    prev_ptr = 0
    for k in range(n_structs):
        fields = [("node", emb[k % len(emb)]), ("owner", b.ptr(ptd[k % len(ptd)])),
                  ("count", sca[k % len(sca)]), ("name", b.array(char_id, int_id, 16))]
        if prev_ptr:
            fields.append(("next", prev_ptr))
        members: list[tuple[str | None, int, int, int]] = []
        off = 0
        for name, tid in fields:  # natural C layout, alignment capped at 8
            size = max(_size(b.btf, tid), 1)
            align = min(size, 8)
            off = (off + align - 1) // align * align
            members.append((name, tid, off * 8, 0))
            off += size
        sid = b.struct(f"btfspec_mod_obj{k}", (off + 7) // 8 * 8, members)
        prev_ptr = b.ptr(sid)
        b.typedef(f"btfspec_mod_obj{k}_t", sid)
        proto = b.func_proto(int_id, [("obj", prev_ptr), ("flags", sca[(k + 1) % len(sca)])])
        b.func(f"btfspec_mod_fn{k}", proto, 1)
    return b.to_bytes()


def run(split: bytes, base: bytes, repeat: int = 5) -> tuple[list[Row], dict[str, int]]:
    """Time distill and relocate of ``split`` on ``base`` with the reference and with libbpf."""
    from btfspec.oracle.impls import reference
    from btfspec.oracle.impls.libbpf import get_libbpf, unavailable_reason

    rows: list[Row] = []
    dist = reference.distill(split, base)
    if not dist.ok:
        raise ValueError(f"the reference cannot distill this split: rc {dist.rc}: {' '.join(dist.log)[-200:]}")
    assert dist.base is not None and dist.split is not None
    new_base, new_split = dist.base, dist.split
    info = {"split_types": Btf.from_bytes(split, base=Btf.from_bytes(base)).nr_types,
            "base_types": Btf.from_bytes(base).nr_types, "distilled_base_types": Btf.from_bytes(new_base).nr_types}
    lib = None if unavailable_reason() else get_libbpf()
    lib_d = best_of(lambda: lib.distill_outcome(split, base), repeat) if lib else None
    lib_r = best_of(lambda: lib.relocate_outcome(new_split, new_base, base), repeat) if lib else None
    if lib_d is not None:
        rows.append(Row("libbpf distill (baseline)", lib_d))
    rows.append(Row("python distill", best_of(cold(lambda: reference.distill(split, base)), repeat),
                    "libbpf distill", lib_d, TARGET))
    rows.append(Row("python distill, base parsed once", best_of(lambda: reference.distill(split, base), repeat),
                    "libbpf distill", lib_d, WARM_TARGET))
    if lib_r is not None:
        rows.append(Row("libbpf relocate (baseline)", lib_r))
    rows.append(Row("python relocate", best_of(cold(lambda: reference.relocate(new_split, new_base, base)), repeat),
                    "libbpf relocate", lib_r, TARGET))
    rows.append(Row("python relocate, base parsed once",
                    best_of(lambda: reference.relocate(new_split, new_base, base), repeat),
                    "libbpf relocate", lib_r, WARM_TARGET))
    if lib is not None:
        rows += worker_rows(split, base, new_split, new_base, lib_d, lib_r, repeat)
    return rows, info


def worker_rows(split: bytes, base: bytes, new_split: bytes, new_base: bytes, lib_d: float | None,
                lib_r: float | None, repeat: int) -> list[Row]:
    """What the crash-proof worker adds to libbpf's calls: on this case against the in-process calls,
    and per small fuzz-sized case, one call per operation against one batch."""
    from btfspec.oracle.impls.batch import Output, Step
    from btfspec.oracle.impls.libbpf_process import LibbpfWorker

    with LibbpfWorker() as w:
        rows = [Row("libbpf distill via the worker", best_of(lambda: w.distill(split, base), repeat),
                    "libbpf distill", lib_d),
                Row("libbpf relocate via the worker", best_of(lambda: w.relocate(new_split, new_base, base), repeat),
                    "libbpf relocate", lib_r)]
        small_split, small_base = small_case()

        def three_calls() -> None:
            d = w.distill(small_split, small_base)
            w.relocate(d.outputs["split"], d.outputs["base"], small_base)
            w.parse(small_split, small_base)

        def one_batch() -> None:
            w.batch([Step("distill", (small_split, small_base)),
                     Step("relocate", (Output(0, "split"), Output(0, "base"), small_base)),
                     Step("parse", (small_split, small_base))])

        calls = best_of(lambda: [three_calls() for _ in range(20)], repeat) / 20
        rows.append(Row("small case, 3 worker calls", calls))
        rows.append(Row("small case, 1 worker batch", best_of(lambda: [one_batch() for _ in range(20)], repeat) / 20,
                        "3 worker calls", calls))
    return rows


def small_case() -> tuple[bytes, bytes]:
    """A fuzz-sized split and base: a module struct embedding and pointing at two base types."""
    b = Builder()
    int_id = b.int("int", 4, INT_SIGNED)
    inner = b.struct("kernel_obj", 4, [("v", int_id, 0, 0)])
    other = b.struct("kernel_list", 8, [("a", int_id, 0, 0), ("b", int_id, 32, 0)])
    base = b.to_bytes()
    s = Builder(b.btf)
    s.struct("module_obj", 16, [("obj", inner, 0, 0), ("next", s.ptr(other), 64, 0)])
    return s.to_bytes(), base


def run_kernel_vm(count: int = 40) -> tuple[list[Row], dict[str, float]]:
    """Relocation through the guest's module loader (``kernel-vm``) beside libbpf, on a module built
    against the guest's vmlinux: the boot time, then the mean of ``count`` relocations each.

    Raises ValueError (with the reason) when kernel-vm cannot run here.
    """
    from btfspec.oracle.impls import reference
    from btfspec.oracle.impls.adapter import ImplUnavailable, close_impls, make_impl
    from btfspec.oracle.impls.kernel_vm import KernelVmImpl

    try:
        vm = KernelVmImpl()
    except ImplUnavailable as exc:
        raise ValueError(str(exc)) from None
    impls: list[object] = [vm]
    try:
        base = vm.vmlinux
        dist = reference.distill(build_module(base), base)
        if not dist.ok or dist.base is None or dist.split is None:
            raise ValueError("the reference cannot distill the generated module")
        split, dbase = dist.split, dist.base
        started = time.perf_counter()
        vm.start()
        boot = time.perf_counter() - started
        rows: list[Row] = []
        lib_mean = None
        try:
            lib = make_impl("libbpf")
            impls.append(lib)
            lib_mean = _mean(lambda: lib.relocate(split, dbase, base), count)
            rows.append(Row("libbpf relocate (baseline)", lib_mean))
        except ImplUnavailable:
            pass
        first = vm.relocate(split, dbase, base)
        if not first.ok:
            raise ValueError(f"the guest did not relocate the generated module: {first.describe()}")
        cpu0 = vm.guest.cpu_seconds()
        vm_mean = _mean(lambda: vm.relocate(split, dbase, base), count)
        cpu = (vm.guest.cpu_seconds() - cpu0) / count
        rows.append(Row("kernel-vm relocate (guest loader)", vm_mean, "libbpf relocate", lib_mean))
        return rows, {"boot_seconds": boot, "relocations_per_second": 1 / vm_mean, "count": count,
                      "qemu_cpu_seconds_per_relocation": cpu, "load_average": os.getloadavg()[0],
                      "accel": vm.guest.used_accel, "agent": vm.image.agent}  # type: ignore[dict-item]
    finally:
        close_impls(impls)  # type: ignore[arg-type]


def _mean(fn: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - started) / count


def cold(call: Callable[[], object]) -> Callable[[], object]:
    """``call`` with the reference's parse of large bases forgotten first (end to end, as libbpf runs)."""
    from btfspec.oracle.impls import reference

    def run() -> object:
        reference.forget_kept_parses()
        return call()

    return run
