#!/usr/bin/env bash
# Set-up shared by the README's commands; source it from the repository root.
# Creates .venv, installs btfspec (editable) and libbpf v1.6 (pylibbpf wheel, --no-deps),
# and, when run as root, the Debian tools the tests use. Says what it skipped otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BTFSPEC_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
say() { printf 'btfspec-setup: %s\n' "$*" >&2; }

DEB_TOOLS=(bpftool:bpftool pahole:pahole gcc:gcc objcopy:binutils redis-server:redis-server
           qemu-system-x86_64:qemu-system-x86 busybox:busybox-static)
DEB_TOOLS+=(chromium:chromium)  # renders btfspec report --html pages in a test (headless)
missing_pkgs=()
for pair in "${DEB_TOOLS[@]}"; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing_pkgs+=("${pair##*:}")
done
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing_pkgs+=(python3-venv)
fi
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian packages: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null
  else
    say "skipped installing ${missing_pkgs[*]} (needs root and apt-get); tests that need them skip with a reason"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.btfspec-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/bootstrap.sh" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  say "installing btfspec and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$ROOT[campaign,dev]"
  if ! "$VENV/bin/python" -m pip install -q --no-deps pylibbpf==0.0.6; then
    say "could not install pylibbpf==0.0.6 (libbpf v1.6): the libbpf backend will be unavailable"
  fi
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
