"""A Debian kernel in QEMU whose module loader relocates BTF: the ``kernel-vm`` implementation's guest.

At module load the kernel relocates a module's ``.BTF`` onto its vmlinux through ``.BTF.base``
(``btf_parse_module`` -> ``btf_relocate``) and publishes the result in ``/sys/kernel/btf/<module>``.
This package boots the kernel of a Debian ``linux-image-*-unsigned`` package (fetched into the user
cache on first use, :mod:`.image`) with an initramfs of busybox and an agent shell script, and loads
a real module of that package (``dummy.ko``, the *carrier*, :mod:`.carrier`) carrying each case's
split and distilled base (:mod:`.vm`).

Agent protocol (one virtio-serial port named ``btfspec.agent``, a unix socket on the host; text lines
end in ``\\n``, binary payloads follow their line)::

    host -> PING [sha256]              guest -> READY <release> <sha256 of /sys/kernel/btf/vmlinux, or ->
    host -> LOAD <n> + n bytes (.ko)   guest -> BTF + the module's BTF (its length is in its own
                                                 header) + END <rmmod status>
                                       or       FAIL <insmod status> <a> <b> <c> + a bytes of
                                                 insmod's stderr, b of kernel log, c of kretprobe lines
    host -> SLEEP <s>                  guest -> DONE            (tests: the timeout path)
    host -> PANIC                      the guest panics         (tests: the crash path)

``LOAD`` writes the module with ``dd``, ``insmod``s it (the carrier runs no code), copies
``/sys/kernel/btf/dummy`` to the port when it exists and ``rmmod``s it -- in the shell agent; when
gcc and a static libc were there to build ``agent.c``, the shell agent hands the port to it after
``PING`` and it does the same with ``init_module``/``delete_module``/``klogctl`` in one process (no
fork per case: half the guest CPU of an ok case, a seventh of a rejected one). Debian sets
``CONFIG_MODULE_ALLOW_BTF_MISMATCH=y``, so a module whose BTF the loader rejects still loads, without
BTF: the ``FAIL`` answer then has insmod status 0, the kernel log (``BPF: ...`` lines of the BTF
verifier; everything printed since the previous ``FAIL`` -- successful loads print nothing), and the
return values of the functions ``btf_parse_module`` calls (kretprobes: ``btf_parse_base``,
``btf_parse_hdr``, ``btf_parse_str_sec``, ``btf_check_all_metas``, ``btf_check_type_tags``,
``btf_relocate``), whose first negative value is the loader's errno. One guest runs one case at a
time; a panic (the kernel runs with ``oops=panic panic_on_warn=1``), a hang or a closed port ends
the guest, and the next case boots a new one.
"""
