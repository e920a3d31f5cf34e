"""Rebuild corpus/real from two fetch-kernel extractions: copy the chosen samples and write samples.json.

    btfspec fetch-kernel linux-image-6.1.0-47-cloud-amd64
    btfspec fetch-kernel linux-image-6.1.0-50-cloud-amd64
    python corpus/real/make_samples.py [--cache DIR]

Files are raw BTF compressed with zstd level 19; samples.json records each file's provenance, raw
sha256 and what libbpf v1.6 does with it (distill against its own vmlinux, relocate onto the other).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import zstandard

from btfspec.oracle.kernels.fetch import cache_root
from btfspec.oracle.kernels.stats import collect_modules, run_stats
from btfspec.spec.sources import read_bytes_any, write_atomic

HERE = Path(__file__).resolve().parent
KERNELS = ("6.1.0-47-cloud-amd64", "6.1.0-50-cloud-amd64")
# name -> (path under lib/modules/<release>/, roles, why); the first kernel's copies
SAMPLES = {
    "nls_utf8": ("kernel/fs/nls/nls_utf8", ["small"],
                 "smallest kind of module: 2 split types (a codepage table), 73-byte distilled base"),
    "crc-itu-t": ("kernel/lib/crc-itu-t", ["small"],
                  "lib/ module, 94-byte split; its distilled base (172 B) is larger than the split"),
    "dummy": ("kernel/drivers/net/dummy", ["small"], "tiny network driver (453 B split)"),
    "tcp_bbr": ("kernel/net/ipv4/tcp_bbr", ["small"],
                "TCP congestion control (2.3 KB split), near the median split size (2.6 KB)"),
    "veth": ("kernel/drivers/net/veth", ["small"], "network driver, 3.2 KB split, 58 copied base types"),
    "nfsv2": ("kernel/fs/nfs/nfsv2", ["representative"],
              "high distilled-base/split ratio: 2,463 B base (98 types) for a 9 KB split, 142 copies"),
    "af_key": ("kernel/net/key/af_key", ["relocates-cleanly"],
               "distilled on -47, relocates onto -50's vmlinux with no stale copy"),
    "act_nat": ("kernel/net/sched/act_nat", ["size-change"],
                "relocation onto -50 fails: struct tc_action grew from 208 to 224 bytes (embedded by value)"),
    "uio_aec": ("kernel/drivers/uio/uio_aec", ["size-change"],
                "relocation onto -50 fails: struct device grew from 736 to 744 bytes (embedded by value)"),
    "xfrm_user": ("kernel/net/xfrm/xfrm_user", ["stale-copy"],
                  "relocates onto -50, but a copied FUNC_PROTO (km_migrate's, 7 params) has 8 params in -50"),
    "null_blk": ("kernel/drivers/block/null_blk/null_blk", ["stale-copy"],
                 "relocates onto -50, but a copied FUNC_PROTO (bsg_timeout's, 1 param) has 2 params in -50"),
}
COUNTERPARTS = ("af_key", "act_nat", "uio_aec", "xfrm_user", "null_blk")  # also copied from the second kernel


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(str(dst), zstandard.ZstdCompressor(level=19).compress(src.read_bytes()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=None, help="fetch-kernel cache directory")
    args = ap.parse_args()
    cache = cache_root(args.cache)
    kernels, samples = {}, []
    for release, other in (KERNELS, KERNELS[::-1]):
        pkg = cache / f"linux-image-{release}"
        manifest = json.loads((pkg / "manifest.json").read_text())
        _copy(pkg / "vmlinux.btf", HERE / release / "vmlinux.btf.zst")
        names = SAMPLES if release == KERNELS[0] else COUNTERPARTS
        for name in names:
            _copy(pkg / "modules" / f"{SAMPLES[name][0]}.btf", HERE / release / "modules" / f"{name}.btf.zst")
        vm = read_bytes_any(str(HERE / release / "vmlinux.btf.zst"))
        kernels[release] = {k: manifest[k] for k in ("package", "version", "architecture", "deb", "deb_sha256",
                                                      "image", "compression")}
        kernels[release]["modules_in_package"] = manifest["counts"]["modules"]
        kernels[release]["vmlinux"] = {"file": f"{release}/vmlinux.btf.zst", "raw_bytes": len(vm),
                                       "raw_sha256": _sha(vm)}
        refs, base = collect_modules(str(HERE / release))
        assert base is not None
        run = run_stats(refs, base, impl="libbpf", jobs=1, target=str(HERE / other / "vmlinux.btf.zst"))
        for r in run.rows:
            raw = read_bytes_any(r.path)
            module, roles, why = SAMPLES[r.name]
            if release != KERNELS[0]:
                roles, why = ["counterpart"], f"the same module in {release} (compare with {KERNELS[0]}'s, relocated)"
            samples.append({
                "name": r.name, "kernel": release, "file": os.path.relpath(r.path, HERE), "module": module + ".ko",
                "raw_bytes": len(raw), "raw_sha256": _sha(raw), "roles": roles, "why": why,
                "libbpf_distill": {"status": r.status, "split_types": r.split_types, "base_types": r.base_types,
                                   "base_bytes": r.base_bytes, "new_split_types": r.new_split_types,
                                   "new_split_bytes": r.new_split_bytes, "copied_types": r.copied_types},
                "libbpf_relocate_onto": {"kernel": other, "status": r.reloc_status, "errno": r.reloc_errno,
                                         "reason": r.reloc_reason, "stale_copies": r.stale_copies,
                                         "gone_copies": r.gone_copies, "examples": r.stale_examples},
            })
    out = {"format": 1, "description": "Raw BTF (zstd -19) from two Debian 6.1 cloud kernels; see README.md",
           "kernels": kernels, "samples": samples}
    write_atomic(str(HERE / "samples.json"), (json.dumps(out, indent=1) + "\n").encode())
    print(f"{len(samples)} samples written to {HERE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
