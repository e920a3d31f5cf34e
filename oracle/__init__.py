"""The oracles: implementations behind one adapter, the judge, the fuzzer and the real-kernel tools.

* :mod:`btfspec.oracle.impls` -- every distill/relocate/accept implementation as an ``Implementation``
  returning an ``Outcome`` (the Python reference, libbpf v1.6, the kernel, external programs);
* :mod:`btfspec.oracle.equiv` -- semantic equivalence of two splits, with the first difference as a path;
* :mod:`btfspec.oracle.fuzz` -- properties, campaigns, findings, the regression corpus, reports;
* :mod:`btfspec.oracle.kernels` -- Debian kernels, kernel-module ELF, ``check``, ``stats``, ``cross``.

Layers: ``impls`` uses only :mod:`btfspec.spec`; ``equiv`` uses ``spec`` and ``btfgen.matching``;
``fuzz`` uses all of them; ``kernels`` uses ``impls`` and ``equiv``. See ARCHITECTURE.md.
"""
