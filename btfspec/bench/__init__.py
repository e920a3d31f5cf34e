"""Benchmarks behind ``btfspec bench``: each prints ratios against libbpf or bpftool measured in the same run."""
