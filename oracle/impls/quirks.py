"""The libbpf v1.6 quirk catalogue (distill-relocate-behaviour.md §3) as data.

:mod:`btfspec.oracle.impls.reference` records the id of every quirk whose trigger condition is met while it runs
(in both modes) and, in strict mode, reports it with a log line built from :func:`strict_line`.
``trigger`` says exactly when the id is recorded; ``strict`` says what ``python-strict`` does
instead of imitating libbpf. Quirks marked ``reachable=False`` cannot be triggered through the
bytes-in/bytes-out API (they need a libbpf object state) and are never recorded.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable
from dataclasses import dataclass

from btfspec.oracle.impls.outcome import ERROR, Outcome


@dataclass(frozen=True)
class Quirk:
    """One catalogue entry."""

    id: str
    summary: str  # one line: what libbpf v1.6 does
    trigger: str  # when btfspec.oracle.impls.reference records the id
    strict: str  # what python-strict does instead
    reachable: bool = True


_ENTRIES = (
    Quirk("Q1", "FWD matching tests the base struct/union's kflag, not the FWD's own struct/union flag",
          "a distilled FWD meets a same-named base STRUCT/UNION and the two rules disagree",
          "match a struct-FWD only to STRUCT and a union-FWD only to UNION"),
    Quirk("Q2", "a distilled STRUCT/UNION matches a same-named base type of any kind",
          "a distilled STRUCT/UNION would be accepted by a base type of another kind",
          "require the same composite kind"),
    Quirk("Q3", "an empty string at a non-zero name offset counts as a name",
          "whether a type is named is decided for a non-zero name offset that points at ''",
          "treat the type as anonymous (distill: descend and copy to the split; relocate: reject a "
          "distilled one with -EINVAL, skip a base one)"),
    Quirk("Q4", "base struct/union name counts are keyed by string offset, not content",
          "counting by offset and by content give different candidate lists for a base type",
          "count by string content"),
    Quirk("Q5", "a cyclic modifier chain below a split struct/union member makes relocation loop forever",
          "embedded marking meets a modifier/array cycle",
          "fail with -ELOOP (python mode does the same instead of hanging)"),
    Quirk("Q6", "an empty distilled base puts distill's pass 2 in base mode and drops the split copies",
          "pass 1 emitted nothing while some base type was reached",
          "choose the mode by pass and emit the part-(b) copies"),
    Quirk("Q7", "the distilled name/size index keeps 31-bit sizes",
          "a sized lookup returns a candidate whose 32-bit size differs from the base type's",
          "compare full 32-bit sizes"),
    Quirk("Q8", "distill copies anonymous INT/FLOAT/FWD into the distilled base",
          "a reached base INT/FLOAT/FWD has an empty name",
          "fail distill with -EINVAL"),
    Quirk("Q9", "reserved info bits (16-23, 29-30) are ignored on parse and kept by copies",
          "an input type has reserved info bits set",
          "reject the input with -EINVAL (as the kernel does)"),
    Quirk("Q10", "relocation rewrites ids before strings, so -ENOENT leaves the split half-relocated",
          "relocation fails with -ENOENT on an unmapped string offset",
          "same -ENOENT (no output either way)"),
    Quirk("Q11", "relocating a BTF that is not split dereferences NULL",
          "never (the bytes API always relocates a split)", "-", reachable=False),
    Quirk("Q12", "FWD type and FUNC_PROTO return ids are never validated",
          "an input FWD has a non-zero type, or a FUNC_PROTO return id is >= type_cnt "
          "(python reads an out-of-range id map entry as 0)",
          "reject the input with -EINVAL"),
    Quirk("Q13", "relocation leaves a stale cached raw buffer of a modifiable BTF",
          "never (the bytes API serialises fresh objects)", "-", reachable=False),
    Quirk("Q14", "relocation ignores the target base's byte order",
          "the target base and the split have different byte orders",
          "fail relocation with -EINVAL"),
    Quirk("Q15", "multi-level target bases give wrong string offsets",
          "never (the target base is always parsed standalone)", "-", reachable=False),
    Quirk("Q16", "the -ENOENT log line prints the string at offset 0 ('') instead of the unmapped one",
          "relocation fails with -ENOENT on an unmapped string offset",
          "print the real string"),
    Quirk("Q17", "distill marks reachable base types recursively and can overflow the C stack",
          "marking goes deeper than Q17_DEPTH levels (python uses a worklist and succeeds)",
          "same result (nothing to correct)"),
    Quirk("Q18", "raw parsing ignores version/flags and allows short headers, gaps and trailing bytes",
          "an input has version != 1, flags != 0, hdr_len != 24 with non-zero bytes past 24, "
          "hdr_len < 24, or a gap/trailing bytes between or after the sections",
          "reject the input with -EINVAL (kernel rules)"),
    # --- v1.6 on the 2026 format (issue 14; measured with the pylibbpf v1.6 shared object) ------
    Quirk("Q19", "a 32-byte header's layout section is ignored: native order parses (the section is a gap), "
          "foreign order fails with -ENOTSUP, and distill/relocate write 24-byte headers without it",
          "never (python parses as v1.6 does; the 2026 rules live in spec.formats 'libbpf-2026')",
          "same (nothing to correct: v1.6 predates the section)", reachable=False),
    Quirk("Q20", "a kind only the layout section describes (any kind > 19, or 0) fails to parse with -EINVAL "
          "'Unsupported BTF_KIND:N' even when the layout sizes it",
          "never (the parse fails in both modes)", "-", reachable=False),
    Quirk("Q21", "7-bit kinds and 24-bit vlen of the wide info layout are read as 5 and 16 bits: kind 33 "
          "parses as INT, a STRUCT with 0x10001 members as one member then kind 0 (-EINVAL)",
          "as Q9 (the extra bits are the reserved info bits 16-23 and 29-30)",
          "as Q9: reject the input with -EINVAL", reachable=False),
    Quirk("Q22", "a split of a split is parsed with start_str_off = the base's own str_len (not base str_len "
          "+ base start_str_off), so names written after both bases' strings are misread, or fail "
          "-EINVAL past the end; distill copies the misread names",
          "never (the bytes API parses two levels; spec.validate_libbpf.parse applies the rule to a "
          "split-of-split Btf base)",
          "libbpf v1.7's rule (0e14a12a): start_str_off = base str_len + base start_str_off", reachable=False),
)

QUIRKS: dict[str, Quirk] = {q.id: q for q in _ENTRIES}
# The ids as names, for code that refers to one quirk (Q5 = "Q5", ...).
Q1, Q2, Q3, Q4, Q5, Q6, Q7, Q8, Q9, Q10, Q11, Q12, Q13, Q14, Q15, Q16, Q17, Q18, Q19, Q20, Q21, Q22 = QUIRKS

# Marking depth (levels of libbpf's recursion) from which Q17 is recorded.
Q17_DEPTH = 10_000
# A chain depth that crashes libbpf v1.6 for certain: it overflows an 8 MiB stack somewhere between 70k
# and 100k levels (the corpus's Q17 entry uses it).
Q17_CRASH_DEPTH = 200_000


# libbpf's relocate limit where the reference predicts the Q5 hang: libbpf answers a generated case
# (<= 60 types) in 0.5 ms (median; p99.9 9 ms, slowest 23 ms, counted from the request to the read, with
# two python+libbpf workers on two cores), so 30 ms is a wide margin, plus time for large inputs (a
# kernel's base), never more than Q5_SUSPECT_TIMEOUT.  The call runs in a fork of the libbpf worker (a
# limit under the impl's own, LibbpfImpl), and the limit counts its CPU time, so a loaded machine that
# starves it does not turn a slow answer into the predicted hang.  Every hang costs this wait: about one
# seeded P1 case in 150 hangs libbpf, and at 0.1 s those waits were a fifth of a seeded python+libbpf P1
# loop's time (at 0.25 s, 40% of a campaign's).
Q5_SUSPECT_TIMEOUT = 2.0
Q5_SUSPECT_MIN = 0.03
Q5_SUSPECT_PER_MIB = 0.5  # seconds per MiB of relocation input
_QUIRK_ID = re.compile(r"Q\d+\Z")


def catalogue_ids(text: str) -> list[str]:
    """The catalogue ids in a comma-joined ``text`` (a finding's ``quirk``, an outcome's detail), as given."""
    return [p.strip() for p in text.split(",") if _QUIRK_ID.match(p.strip())]


def _id_key(q: str) -> tuple[int, str]:
    return len(q), q  # Q2 before Q12


def catalogue_order(ids: Iterable[str]) -> list[str]:
    """``ids`` once each, in catalogue order (Q2 before Q12)."""
    return sorted(set(ids), key=_id_key)


def catalogue_key(text: str) -> tuple[tuple[int, str], ...]:
    """A sort key for comma-joined catalogue ids (a group's ``Q3,Q6``): Q1, Q1,Q3, Q2 ... Q12."""
    return tuple(_id_key(q) for q in catalogue_ids(text))


def quirk_ids(out: Outcome) -> list[str]:
    """The catalogue ids a reference outcome names in ``detail`` (nothing for other details)."""
    return catalogue_ids(out.detail)


def q5_limit(prediction: Outcome, size: int, timeout: float) -> float | None:
    """The short time limit of a libbpf relocation of ``size`` input bytes that the Python reference's
    ``prediction`` (its relocation of the same input) says hangs (Q5), else None; never above ``timeout``."""
    if prediction.status == ERROR and prediction.errno == -errno.ELOOP and Q5 in quirk_ids(prediction):
        return min(round(Q5_SUSPECT_MIN + Q5_SUSPECT_PER_MIB * size / (1 << 20), 2), Q5_SUSPECT_TIMEOUT, timeout)
    return None


def describe(qid: str) -> str:
    """``Q3: an empty string at a non-zero name offset counts as a name``."""
    return f"{qid}: {QUIRKS[qid].summary}"


def strict_line(qid: str, detail: str = "") -> str:
    """The log line python-strict writes when it acts on a quirk."""
    q = QUIRKS[qid]
    tail = f" ({detail})" if detail else ""
    return f"btfspec: strict: {qid} {q.summary}{tail}; strict: {q.strict}"
