"""The implementations behind one adapter (:mod:`.adapter`): every BTF distill/relocate/accept
implementation is an :class:`Implementation` returning an :class:`Outcome`.

Modules: ``adapter`` (protocol, registry, comparison, the known-divergence rule), ``outcome`` (what one
call returned), ``reference`` + ``quirks`` (the Python reference reading like libbpf, and the quirk
catalogue), ``libbpf`` + ``libbpf_worker`` (libbpf v1.6 via ctypes in a crash-proof worker), ``kernel``
(``BPF_BTF_LOAD``), ``external`` (an external program per call, ``--impl cmd``), ``kernel_vm`` (the
module loader of a Debian kernel in QEMU, ``--impl kernel-vm``, opt-in), ``batch`` (the steps of one
case as one request, :func:`run_steps`)."""

from __future__ import annotations

from btfspec.lazy import lazy_exports

# public name -> module that defines it (imported on first use, so that importing the package stays cheap)
_EXPORTS: dict[str, str] = {
    "ACCEPT": "btfspec.oracle.impls.adapter",
    "DISTILL": "btfspec.oracle.impls.adapter",
    "RELOCATE": "btfspec.oracle.impls.adapter",
    "OPERATIONS": "btfspec.oracle.impls.adapter",
    "KNOWN": "btfspec.oracle.impls.adapter",
    "Implementation": "btfspec.oracle.impls.adapter",
    "ImplUnavailable": "btfspec.oracle.impls.adapter",
    "PythonImpl": "btfspec.oracle.impls.adapter",
    "LibbpfImpl": "btfspec.oracle.impls.adapter",
    "KernelImpl": "btfspec.oracle.impls.adapter",
    "parse_impl_list": "btfspec.oracle.impls.adapter",
    "available": "btfspec.oracle.impls.adapter",
    "make_impl": "btfspec.oracle.impls.adapter",
    "make_impls": "btfspec.oracle.impls.adapter",
    "close_impls": "btfspec.oracle.impls.adapter",
    "merge_split": "btfspec.oracle.impls.adapter",
    "bytes_difference": "btfspec.oracle.impls.adapter",
    "outcome_difference": "btfspec.oracle.impls.adapter",
    "known_finding": "btfspec.oracle.impls.adapter",
    "libbpf_undefined": "btfspec.oracle.impls.adapter",
    "agree": "btfspec.oracle.impls.adapter",
    "run_steps": "btfspec.oracle.impls.adapter",
    "Step": "btfspec.oracle.impls.batch",
    "Output": "btfspec.oracle.impls.batch",
    "Outcome": "btfspec.oracle.impls.outcome",
    "OK": "btfspec.oracle.impls.outcome",
    "ERROR": "btfspec.oracle.impls.outcome",
    "TIMEOUT": "btfspec.oracle.impls.outcome",
    "CRASH": "btfspec.oracle.impls.outcome",
    "STATUSES": "btfspec.oracle.impls.outcome",
    "DEFAULT_TIMEOUT": "btfspec.oracle.impls.outcome",
    "call_outcome": "btfspec.oracle.impls.outcome",
    "error_outcome": "btfspec.oracle.impls.outcome",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
