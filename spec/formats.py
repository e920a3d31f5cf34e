"""Format-rule sets: which BTF format a reader accepts, named by the reader and its version.

One :class:`RuleSet` per reader the project holds BTF to; the validators (:mod:`btfspec.spec.validate`)
and the model's parse options come from it. Each field is a rule in the reader's source text:

``libbpf1.6`` (alias ``libbpf``)
    libbpf v1.6.0 ``btf_new``: a 24-byte header in foreign byte order (any ``hdr_len`` >= 24 natively,
    bytes past 24 ignored), 5-bit kind / 16-bit vlen, unknown kinds rejected, and a split on a split
    starts its strings at the base's own ``str_len`` (``btf->start_str_off = base_btf->hdr->str_len``).
``libbpf-2026``
    libbpf master (462733ec/87896082 layout section, 9801e029 wide info, 0e14a12a multi-split strings):
    ``struct btf_header`` of 32 bytes, the layout section between types and strings, unknown kinds
    sized from it (or the base's), 7-bit kind / 24-bit vlen, ``start_str_off = base str_len + base
    start_str_off``.
``kernel-6.18`` (alias ``kernel``)
    The kernel verifier as measured on 6.18 (24-byte ``struct btf_header``).
``kernel-7.1``
    Kernel 7.1 (cilium/ebpf's 7.1 ``vmlinux.btf``): 32-byte ``struct btf_header``; ``btf_parse_layout_sec``
    (aligned, at least one entry, whole entries, inside the data); ``btf_check_sec_info`` tiles three
    sections; "String section is not at the end" only for ``hdr_len`` < 32. Kind and vlen keep the
    classic widths (``BTF_INFO_MASK`` 0x9f00ffff: 7.1's BTF has no ``enum btf_max``, which the wide-info
    change adds) and unknown kinds stay invalid (``btf_check_meta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from btfspec.spec.kinds import HDR_LEN, HDR_LEN_LAYOUT, INFO_CLASSIC, INFO_WIDE, InfoLayout

if TYPE_CHECKING:
    from btfspec.spec.model import Btf


@dataclass(frozen=True)
class RuleSet:
    """The format rules of one reader."""

    name: str
    family: Literal["libbpf", "kernel"]
    title: str
    info: InfoLayout  # how kind and vlen sit in info
    header_size: int  # sizeof(struct btf_header) for this reader
    sizes_unknown_kinds: bool  # unknown kinds sized from the layout section (libbpf btf_type_size_unknown)
    cumulative_split_strings: bool  # split-of-split: start_str_off = base str_len + base start_str_off

    @property
    def knows_layout(self) -> bool:
        """The reader's header has ``layout_off``/``layout_len``."""
        return self.header_size >= HDR_LEN_LAYOUT

    def split_start_str_off(self, base: Btf | None) -> int | None:
        """Where a split on ``base`` starts its strings under these rules (None: no base)."""
        if base is None:
            return None
        return base.str_len_total if self.cumulative_split_strings else base.str_len


RULE_SETS: dict[str, RuleSet] = {r.name: r for r in (
    RuleSet("libbpf1.6", "libbpf", "libbpf v1.6 rules", INFO_CLASSIC, HDR_LEN, False, False),
    RuleSet("libbpf-2026", "libbpf", "libbpf 2026 rules (layout section, wide info)", INFO_WIDE,
            HDR_LEN_LAYOUT, True, True),
    RuleSet("kernel-6.18", "kernel", "kernel rules", INFO_CLASSIC, HDR_LEN, False, True),
    RuleSet("kernel-7.1", "kernel", "kernel 7.1 rules (layout section)", INFO_CLASSIC, HDR_LEN_LAYOUT,
            False, True),
)}
ALIASES = {"libbpf": "libbpf1.6", "kernel": "kernel-6.18"}
RULE_NAMES: tuple[str, ...] = (*ALIASES, *RULE_SETS)


def rule_set(name: str) -> RuleSet:
    """The rule set called ``name`` (an alias or a full name); ``ValueError`` for anything else."""
    full = ALIASES.get(name, name)
    try:
        return RULE_SETS[full]
    except KeyError:
        raise ValueError(f"rules must be one of {RULE_NAMES}, not {name!r}") from None


__all__ = ["ALIASES", "RULE_NAMES", "RULE_SETS", "RuleSet", "rule_set"]
