"""A column view of a BTF's own types (numpy), for checks and scans that must not decode every type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from btfspec.spec.kinds import INFO_CLASSIC, InfoLayout
from btfspec.spec.model import Btf


@dataclass
class Columns:
    """Own types as numpy columns: the host-order word array, each record's start in it, and each
    record's first three words; ``kind`` and ``vlen`` are split out of ``info``."""

    words: Any
    offs: Any
    name_off: Any
    info: Any
    size_type: Any
    layout: InfoLayout = INFO_CLASSIC

    def __post_init__(self) -> None:
        self.kind = (self.info >> 24) & self.layout.kind_mask
        self.vlen = self.info & self.layout.vlen_mask


def columns(btf: Btf) -> Columns:
    """Columns of ``btf``'s own types; a parsed object answers from its word index undecoded."""
    import numpy as np

    words_arr, starts = btf.flat_words()
    words = np.frombuffer(words_arr, dtype=np.uint32) if len(words_arr) else np.zeros(0, np.uint32)
    offs = np.frombuffer(starts, dtype=np.uint32).astype(np.int64) if len(starts) else np.zeros(0, np.int64)
    if not len(offs):
        return Columns(words, offs, offs.astype(np.uint32), offs.astype(np.uint32), offs.astype(np.uint32),
                       btf.info)
    return Columns(words, offs, words[offs], words[offs + 1], words[offs + 2], btf.info)
