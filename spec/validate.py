"""Rule checks for raw BTF: what libbpf v1.6 or the kernel would reject, and where.

:func:`validate` never raises on a blob and reports every problem it can find as a
:class:`Violation` (rule id, message, byte offset, type id, errno).  Two rule sets:

``libbpf`` (:mod:`btfspec.spec.validate_libbpf`)
    Exactly libbpf v1.6's parse-time checks (``btf_parse_hdr``, ``btf_parse_str_sec``,
    ``btf_parse_type_sec``, ``btf_sanity_check``; reference §8.5): ``validate(...) == []`` iff
    ``btf__new`` (``btf__new_split`` with the base) accepts the blob.  The accept decision is the one
    the Python reference (:mod:`btfspec.oracle.impls.reference`) parses with.

``kernel`` (:mod:`btfspec.spec.validate_kernel`)
    The kernel's BTF verifier (6.18, verified against ``BPF_BTF_LOAD``; reference §4.4), with the
    resolve pass for standalone BTF and module rules with a base.  Measured 6.18 behaviour that
    differs from older sources and from the reference table: identifiers may contain dots anywhere and
    Latin-1 letters (kernel ctype), up to 512 bytes; DATASEC names are any printable bytes; TYPE_TAG
    and DECL_TAG may set kind_flag; FUNC_PROTO return and parameter types may not be VAR, DATASEC or
    DECL_TAG.

Versions of both (``libbpf1.6``/``libbpf-2026``, ``kernel-6.18``/``kernel-7.1``, see
:mod:`btfspec.spec.formats`) differ in the header size, the layout section, the info-word widths and
split-of-split string offsets; ``libbpf`` and ``kernel`` are aliases of the first of each.

Structure comes from the fast path (:mod:`btfspec.spec.fastpath`, :class:`btfspec.spec.model.Btf`); every pass is
linear (the kernel's type-tag walk is bounded by 32 steps per type).
"""

from __future__ import annotations

import struct

from btfspec.spec import validate_kernel, validate_libbpf
from btfspec.spec.errors import BtfError
from btfspec.spec.formats import RULE_NAMES, rule_set
from btfspec.spec.model import Btf
from btfspec.spec.validate_common import MAX_VIOLATIONS, Violation

Rules = str  # one of RULES
RULES: tuple[str, ...] = RULE_NAMES


def validate(blob: bytes | bytearray | memoryview, base: bytes | Btf | None = None,
             rules: Rules = "libbpf", *, limit: int | None = MAX_VIOLATIONS) -> list[Violation]:
    """Every violation of ``rules`` in ``blob`` (split on ``base`` when given); ``[]`` means valid.

    At most ``limit`` violations are listed (then one ``more`` entry says the list was cut).  Never
    raises for any blob or base content; ``rules`` must be one of :data:`RULES` (``ValueError``).
    """
    rs = rule_set(rules)
    check = validate_libbpf.violations if rs.family == "libbpf" else validate_kernel.violations
    try:
        return check(bytes(blob), base, limit, rs)
    except (BtfError, ArithmeticError, LookupError, ValueError, TypeError, AssertionError, struct.error,
            RecursionError, MemoryError) as exc:  # a validator bug, never a verdict: say so
        return [Violation("internal", f"validator failure: {type(exc).__name__}: {exc}")]


__all__ = ["MAX_VIOLATIONS", "RULES", "Rules", "Violation", "validate"]
