"""Real kernels and real modules: Debian kernel packages, module-level distill/relocate, ``check``,
``stats`` and the cross-kernel regression.

Modules: ``fetch`` (download and unpack a Debian kernel package into the cache), ``kmodule`` (a kernel
module ELF end to end: distill, relocate, ``.BTF_ids``), ``btfids`` (the ``.BTF_ids`` section),
``check`` (will a module load on a kernel) with ``unmapped`` (why each distilled type does not map) and
``stale`` (stale copies), ``stats`` and ``cross`` (whole kernels, through ``pool``), ``guest`` (a
package's kernel booted in QEMU, whose module loader relocates for ``kernel-vm``)."""

from __future__ import annotations

from btfspec.lazy import lazy_exports

# public name -> module that defines it (imported on first use, so that importing the package stays cheap)
_EXPORTS: dict[str, str] = {
    "fetch_kernel": "btfspec.oracle.kernels.fetch",
    "cache_root": "btfspec.oracle.kernels.fetch",
    "read_manifest": "btfspec.oracle.kernels.fetch",
    "extract_vmlinux": "btfspec.oracle.kernels.fetch",
    "Module": "btfspec.oracle.kernels.kmodule",
    "OracleError": "btfspec.oracle.kernels.kmodule",
    "load_module": "btfspec.oracle.kernels.kmodule",
    "distill": "btfspec.oracle.kernels.kmodule",
    "relocate": "btfspec.oracle.kernels.kmodule",
    "compare": "btfspec.oracle.kernels.kmodule",
    "write_outputs": "btfspec.oracle.kernels.kmodule",
    "CheckReport": "btfspec.oracle.kernels.check",
    "Target": "btfspec.oracle.kernels.check",
    "check_module": "btfspec.oracle.kernels.check",
    "check_on_kernel": "btfspec.oracle.kernels.check",
    "MapProblem": "btfspec.oracle.kernels.unmapped",
    "analyse_mapping": "btfspec.oracle.kernels.unmapped",
    "StaleFinder": "btfspec.oracle.kernels.stale",
    "run_stats": "btfspec.oracle.kernels.stats",
    "collect_modules": "btfspec.oracle.kernels.stats",
    "summarize": "btfspec.oracle.kernels.stats",
    "run_cross": "btfspec.oracle.kernels.cross",
    "cross_report": "btfspec.oracle.kernels.cross",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
