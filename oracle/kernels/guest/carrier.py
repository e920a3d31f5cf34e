"""The carrier module: a real kernel module whose ``.BTF``/``.BTF.base`` are swapped for a case's.

:func:`make_template` turns a package's module (``drivers/net/dummy.ko``) into a template once, through
objcopy (:func:`btfspec.spec.elf.write_sections`): a ``.BTF.base`` section is added, the module
signature is dropped (``CONFIG_MODULE_SIG_FORCE`` is off in Debian's kernels, so an unsigned module
loads, tainting the kernel once), and the module is made *inert* (:data:`INERT_REMOVED`): without
the relocations that set ``init``/``exit`` in its ``struct module`` it runs no code (a module with
neither may be unloaded), and without its ftrace, static-call, call-thunk, ORC and parameter tables
the loader has less to patch -- about a fifth less guest time per load.

:meth:`Carrier.build` then makes each case's module in memory, with no process started: the split and
the distilled base are appended to the template and the two section headers are pointed at them.
The kernel's ELF checks only need every section inside the file.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

from btfspec.spec.elf import read_sections, section_header_offsets, write_sections
from btfspec.spec.errors import InputError

_SHDR = struct.Struct("<IIQQQQIIQQ")  # name type flags addr offset size link info addralign entsize
_ALIGN = 8
INERT_REMOVED = (".rela.gnu.linkonce.this_module", "__mcount_loc", ".rela__mcount_loc",
                 "__patchable_function_entries", ".rela__patchable_function_entries",
                 ".static_call_sites", ".rela.static_call_sites", ".call_sites", ".rela.call_sites",
                 ".return_sites", ".rela.return_sites", ".orc_unwind", ".orc_unwind_ip",
                 ".rela.orc_unwind_ip", ".orc_header", "__param", ".rela__param")


def make_template(module_elf: bytes, dst: str) -> None:
    """Write ``module_elf`` (an uncompressed x86-64 ``.ko``) to ``dst`` with an empty-ish ``.BTF.base``,
    no signature, and inert. Raises InputError when the module has no ``.BTF`` or objcopy fails."""
    secs = read_sections(module_elf, (".BTF", ".BTF.base"), label="carrier module")
    if ".BTF" not in secs:
        raise InputError("carrier module has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF_MODULES)")
    with tempfile.TemporaryDirectory(prefix="btfspec-carrier-") as tmp:
        src = os.path.join(tmp, "carrier.ko")
        with open(src, "wb") as f:
            f.write(module_elf)
        # A non-empty placeholder: objcopy drops an empty added section.
        write_sections(src, dst, {".BTF": secs[".BTF"], ".BTF.base": secs.get(".BTF.base", b"\0" * 8)},
                       remove=INERT_REMOVED)  # objcopy ignores a name the module does not have


@dataclass(frozen=True)
class Carrier:
    """A template module (see :func:`make_template`) and where its two BTF section headers are."""

    elf: bytes
    name: str  # the module's name: /sys/kernel/btf/<name>
    btf_header: int  # file offset of the .BTF section header
    base_header: int  # file offset of the .BTF.base section header

    @classmethod
    def from_template(cls, elf: bytes, name: str) -> Carrier:
        """Index a template written by :func:`make_template`; InputError when it is not one."""
        if elf[:6] != b"\x7fELF\x02\x01":
            raise InputError("carrier template is not a little-endian ELF64 file")
        if len(elf) < 64 or _SHDR.size != int.from_bytes(elf[0x3A:0x3C], "little"):
            raise InputError("carrier template has a malformed section header table")
        where = section_header_offsets(elf, (".BTF", ".BTF.base"), label="carrier template")
        if len(where) != 2:
            raise InputError("carrier template lacks a .BTF or .BTF.base section")
        return cls(elf, name, where[".BTF"], where[".BTF.base"])

    def build(self, split: bytes, distilled_base: bytes) -> bytes:
        """The carrier with ``split`` as ``.BTF`` and ``distilled_base`` as ``.BTF.base``."""
        out = bytearray(self.elf)
        for header, blob in ((self.btf_header, split), (self.base_header, distilled_base)):
            out += b"\0" * (-len(out) % _ALIGN)
            fields = list(_SHDR.unpack_from(out, header))
            fields[4], fields[5] = len(out), len(blob)
            _SHDR.pack_into(out, header, *fields)
            out += blob
        return bytes(out)
