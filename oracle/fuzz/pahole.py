"""pahole as a second direct encoder: C from a universe (:mod:`btfspec.btfgen.c_emit`), gcc, then pahole.

``pahole_encode(u)`` compiles the kernel part (``kernel.c``) and the module part (``module.c``, which
includes the kernel part's declarations) with ``gcc -g -c -fno-eliminate-unused-debug-types`` and
encodes them with pahole: ``--btf_encode_detached=base.btf kernel.o`` and
``--btf_encode_detached=split.btf --btf_base base.btf module.o`` (pahole deduplicates the module's types
against that base), with ``--btf_gen_floats`` so floats are FLOATs.  ``LLVM_OBJCOPY=objcopy`` is set in
pahole's environment (older pahole versions shell out to it).

The universe must be in the C subset (:func:`btfspec.btfgen.c_emit.c_universe`); what pahole 1.24 and gcc 12
cannot express is listed there (no tags, no VAR for ordinary globals, static FUNCs, signed ``char``).

Property P1 with pahole as the direct encoding (used by tests/test_pahole.py):

* :func:`pahole_case` -- a universe rewritten into the C subset, encoded by pahole and by
  :mod:`btfspec.btfgen.encoder`; :func:`encoder_difference` says where the two encoders disagree (equivalence,
  :mod:`btfspec.oracle.equiv.compare`);
* :func:`round_trip_difference` -- distill pahole's split on pahole's base with an implementation and
  relocate it back: equivalent to pahole's split?
* :func:`pahole_relocation` / :func:`relocation_difference` -- a perturbation of the kernel part
  (:mod:`btfspec.btfgen.perturb`, the kinds in :data:`PERTURBATION_KINDS`, used only when the perturbed universe
  is still in the C subset so that it means the same in C) encoded by pahole as ``base2`` (and the
  module compiled against it as ``split2``); the distilled split relocated onto ``base2`` must do what
  the label says (:func:`btfspec.oracle.fuzz.relocation.expected`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from btfspec.btfgen.c_emit import CSources, c_universe, emit_c, expressible, kernel_only
from btfspec.btfgen.encoder import Case, make_case
from btfspec.btfgen.perturb import ERROR as LABEL_ERROR
from btfspec.btfgen.perturb import STALE, Perturbation
from btfspec.btfgen.universe import Universe
from btfspec.oracle.equiv.compare import equivalent, only_at
from btfspec.oracle.fuzz.helpers import Expected, expected
from btfspec.oracle.impls.outcome import OK
from btfspec.spec.model import Btf

GCC_FLAGS = ("-g", "-c", "-O0", "-w", "-fno-eliminate-unused-debug-types")
TIMEOUT = 60.0
MIN_VERSION = (1, 22)  # --btf_encode_detached and --btf_base


class PaholeError(RuntimeError):
    """gcc or pahole failed (the message holds the command, its output and, for gcc, the source)."""


@lru_cache(maxsize=1)
def pahole_version() -> tuple[int, int] | None:
    """pahole's version as (major, minor), None when it does not run."""
    exe = shutil.which("pahole")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"v?(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def unavailable_reason() -> str | None:
    """Why gcc + pahole cannot be used here (None when they can)."""
    if shutil.which("gcc") is None:
        return "gcc is not installed"
    v = pahole_version()
    if v is None:
        return "pahole is not installed (Debian: apt-get install dwarves)"
    if v < MIN_VERSION:
        return f"pahole {v[0]}.{v[1]} is too old (--btf_encode_detached/--btf_base need 1.22)"
    return None


def _run(argv: list[str], what: str, cwd: str, extra: str = "") -> None:
    env = {**os.environ, "LLVM_OBJCOPY": os.environ.get("LLVM_OBJCOPY", "objcopy")}
    try:
        res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    except subprocess.TimeoutExpired:
        raise PaholeError(f"{what}: {' '.join(argv)} did not finish in {TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise PaholeError(f"{what}: cannot run {argv[0]}: {exc}") from None
    if res.returncode != 0:
        raise PaholeError(f"{what}: {' '.join(argv)} exited with {res.returncode}:\n{res.stderr.strip()}"
                          f"{res.stdout.strip()}{extra}")


def _compile(workdir: str, name: str, src: str) -> str:
    c = os.path.join(workdir, f"{name}.c")
    with open(c, "w") as f:
        f.write(src)
    obj = os.path.join(workdir, f"{name}.o")
    _run(["gcc", *GCC_FLAGS, c, "-o", obj], f"gcc {name}.c", workdir, f"\n--- {name}.c ---\n{src}")
    return obj


def _encode(workdir: str, obj: str, out: str, base: str | None = None) -> bytes:
    argv = ["pahole", "--btf_gen_floats", f"--btf_encode_detached={out}"]
    if base is not None:
        argv.append(f"--btf_base={base}")
    _run([*argv, obj], "pahole", workdir)
    with open(out, "rb") as f:
        return f.read()


def encode_sources(src: CSources, *, module: bool = True, workdir: str | None = None) -> tuple[bytes, bytes | None]:
    """(base, split) BTF of emitted C; ``module=False`` encodes only the kernel part (split None)."""
    with tempfile.TemporaryDirectory(prefix="btfspec-pahole-", dir=workdir) as tmp:
        with open(os.path.join(tmp, "kernel.h"), "w") as f:
            f.write(src.header)
        base_path = os.path.join(tmp, "base.btf")
        base = _encode(tmp, _compile(tmp, "kernel", src.kernel), base_path)
        if not module:
            return base, None
        split = _encode(tmp, _compile(tmp, "module", src.module), os.path.join(tmp, "split.btf"), base_path)
        return base, split


def pahole_encode(u: Universe, *, workdir: str | None = None) -> tuple[bytes, bytes]:
    """pahole's base BTF (kernel part) and split BTF (module part, on that base) of a C-subset universe.

    Raises :class:`btfspec.btfgen.c_emit.Unexpressible` for a universe outside the C subset and
    :class:`PaholeError` when gcc or pahole fails.
    """
    base, split = encode_sources(emit_c(u), workdir=workdir)
    assert split is not None
    return base, split


def pahole_encode_base(u: Universe, *, workdir: str | None = None) -> bytes:
    """pahole's base BTF of the kernel part alone (a perturbed kernel the module may not compile against)."""
    return encode_sources(emit_c(u), module=False, workdir=workdir)[0]




# --------------------------------------------------------------------------------------------------
# pahole as the "direct encoding" of property P1
# --------------------------------------------------------------------------------------------------

# Perturbations P1-pahole applies.  kind_changed is left out: libbpf v1.6 (and the python reference that
# mirrors it) relocates a STRUCT onto a same-named UNION when the name is unique (quirk Q2, a finding
# of P1 proper), and every tag is unique in C.
PERTURBATION_KINDS = ("reorder", "add_unrelated", "remove_unrelated", "add_members", "enum_values",
                      "strings_reordered", "rename_unrelated_typedef", "remove_referenced", "resize_embedded",
                      "int_changed", "stale_composite", "stale_typedef", "stale_func_proto", "stale_array")


@dataclass(frozen=True)
class PaholeCase:
    """A C-subset universe with pahole's base/split encoding and the direct encoder's (``direct``)."""

    universe: Universe
    base: bytes
    split: bytes
    direct: Case


def pahole_case(u: Universe, *, workdir: str | None = None) -> PaholeCase:
    """``u`` rewritten into the C subset and encoded both ways (raises Unexpressible / PaholeError)."""
    cu = c_universe(u)
    base, split = pahole_encode(cu, workdir=workdir)
    return PaholeCase(cu, base, split, make_case(cu))


def _on(split: bytes, base: bytes | Btf) -> Btf:
    return Btf.from_bytes(split, base=base if isinstance(base, Btf) else Btf.from_bytes(base))


def encoder_difference(pc: PaholeCase) -> str | None:
    """Where pahole's encoding and the direct encoder's differ (equivalence of base and of split)."""
    pb, db = Btf.from_bytes(pc.base), Btf.from_bytes(pc.direct.base)
    res = equivalent(pb, db)
    if not res.equal:
        return f"base: {res.first_difference}"
    res = equivalent(_on(pc.split, pb), _on(pc.direct.split, db))
    return None if res.equal else f"split: {res.first_difference}"


def round_trip_difference(pc: PaholeCase, impl: Any) -> str | None:
    """Distill pahole's split on pahole's base with ``impl``, relocate onto that base: is it equivalent
    to pahole's own split?  None when it is."""
    d = impl.distill(pc.split, pc.base)
    if not d.ok:
        return f"distill: {d.describe()}"
    r = impl.relocate(d.outputs["split"], d.outputs["base"], pc.base)
    if not r.ok:
        return f"relocate onto the pahole base: {r.describe()}"
    res = equivalent(_on(r.outputs["split"], pc.base), _on(pc.split, pc.base))
    return None if res.equal else f"round trip: {res.first_difference}"


@dataclass(frozen=True)
class PaholeRelocation:
    """A perturbed kernel part encoded by pahole (``base2``), the expected outcome, and pahole's own split
    of the module against it (``split2``, None for an ``error`` label)."""

    perturbation: Perturbation
    base2: bytes
    split2: bytes | None
    expected: Expected


def pahole_relocation(pc: PaholeCase, p: Perturbation, *, workdir: str | None = None) -> PaholeRelocation | None:
    """pahole's encoding of perturbation ``p`` of ``pc``; None when the perturbed universe is not in the
    C subset (the perturbation would not mean the same in C)."""
    u2 = p.universe
    if u2 is None:
        return None
    with_module = p.label != LABEL_ERROR  # an error label's kernel part may lack what the module needs
    if not with_module:
        u2 = kernel_only(u2)
    if not expressible(u2, need_module=with_module):
        return None
    exp = expected(pc.universe, p)
    base2, split2 = encode_sources(emit_c(u2), module=with_module, workdir=workdir)
    return PaholeRelocation(p, base2, split2, exp)


def relocation_difference(pc: PaholeCase, rc: PaholeRelocation, impl: Any) -> str | None:
    """P1 with pahole as the direct encoder: distill pahole's split, relocate onto pahole's ``base2``.

    ``error``: the labelled errno; ``equivalent``: equivalent to pahole's ``split2``; ``stale-copy``:
    every difference from ``split2`` sits at or below a type distillation copied.  None when it holds.
    """
    d = impl.distill(pc.split, pc.base)
    if not d.ok:
        return f"distill: {d.describe()}"
    r = impl.relocate(d.outputs["split"], d.outputs["base"], rc.base2)
    exp = rc.expected
    if not exp.met_by(r):
        return f"relocate: {r.describe()} where {exp.text()} is expected ({exp.why})"
    if exp.status != OK or rc.split2 is None:
        return None
    b2 = Btf.from_bytes(rc.base2)
    got = _on(r.outputs["split"], b2)
    res = equivalent(got, _on(rc.split2, b2))
    if res.equal:
        return None
    if rc.perturbation.label == STALE:
        own = Btf.from_bytes(pc.split, base=Btf.from_bytes(pc.base)).nr_types
        copies = range(got.start_id + own, got.type_cnt)
        if only_at(res, a_nodes=copies):
            return None
    return f"{rc.perturbation.kind} ({rc.perturbation.description}): {res.first_difference}"


__all__ = ["PERTURBATION_KINDS", "PaholeCase", "PaholeError", "PaholeRelocation", "encode_sources",
           "encoder_difference", "pahole_case", "pahole_encode", "pahole_encode_base", "pahole_relocation",
           "pahole_version", "relocation_difference", "round_trip_difference", "unavailable_reason"]
