#!/usr/bin/env bash
# ebpf-lab set-up: the one recipe used on a bare machine (./lab, ./test) and
# by the Vagrant VM's provisioning. Idempotent: installs only what is missing.
#
#   scripts/setup.sh            OS packages, kernel filesystems, headers, venv
#   scripts/setup.sh --test     ... plus what the test tiers need (QEMU, ...)
#   scripts/setup.sh --print-packages [--test]   print the OS package list, install nothing
#
# EBPF_LAB_VENV=DIR puts the venv elsewhere than .venv (the Vagrant VM keeps
# its venv on its own disk, not in the folder shared with the host).
#
# Supported: Debian 12+, Ubuntu 22.04+, run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
want_test=0
print_only=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        --print-packages) print_only=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "setup: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "setting up the lab needs root (BPF, tracefs and apt need it): run it with sudo."
command -v apt-get >/dev/null || die "this set-up knows Debian and Ubuntu (apt-get); install bcc, clang, llvm, iproute2 and Python 3 venv support by hand on other systems."

# ---------------------------------------------------------------- packages
pkgs=(python3-bpfcc bpfcc-tools bpftrace clang llvm libbpf-dev libelf-dev zlib1g-dev iproute2
      iputils-ping python3-venv python3-pip gcc make libc6-dev
      iptables nftables netsniff-ng kmod ca-certificates procps)
# A font with Chinese glyphs (the tutorial's headings are Chinese beside the
# English): for matplotlib in the lab, and for a browser run on this machine
# (the test tier's Chromium). WenQuanYi Micro Hei: 1.6 MB, against 57 MB for
# fonts-noto-cjk; Debian and Ubuntu both carry it.
pkgs+=(fonts-wqy-microhei)
# bpftool: its own package on Debian, part of linux-tools on Ubuntu.
if apt-cache show bpftool >/dev/null 2>&1; then pkgs+=(bpftool); fi
# Headers for the running kernel when the distribution has them, otherwise its
# generic headers package (the lab then compiles against those: see doctor).
kver=$(uname -r)
if apt-cache show "linux-headers-$kver" >/dev/null 2>&1; then
    pkgs+=("linux-headers-$kver")
elif apt-cache show linux-headers-amd64 >/dev/null 2>&1 && [ "$(dpkg --print-architecture)" = amd64 ]; then
    pkgs+=(linux-headers-amd64)
elif apt-cache show linux-headers-arm64 >/dev/null 2>&1 && [ "$(dpkg --print-architecture)" = arm64 ]; then
    pkgs+=(linux-headers-arm64)
elif apt-cache show linux-headers-generic >/dev/null 2>&1; then
    pkgs+=(linux-headers-generic)
fi
if [ "$want_test" = 1 ]; then
    pkgs+=(qemu-system-x86 qemu-utils debootstrap e2fsprogs cpio zstd xz-utils)
    # The VM tier (vagrant up on libvirt) and the browser tier (headless Chromium).
    pkgs+=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients
           dnsmasq-base rsync openssh-client curl chromium fonts-dejavu-core)
fi
if [ "$print_only" = 1 ]; then echo "${pkgs[*]}"; exit 0; fi

# A machine made to be thrown away (the Vagrantfile sets EBPF_LAB_NEW_MACHINE=1: `vagrant destroy &&
# vagrant up` rebuilds it): dpkg without its fsync per file, pip without compiling every module it
# installs. Under software emulation each costs minutes; elsewhere the defaults stay.
apt_fast=()
pip_fast=()
if [ "${EBPF_LAB_NEW_MACHINE:-0}" = 1 ]; then
    apt_fast=(-o Dpkg::Options::=--force-unsafe-io)
    pip_fast=(--no-compile)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || apt-get update
    apt-get install -y -qq --no-install-recommends "${apt_fast[@]}" "${missing[@]}" >/dev/null \
        || apt-get install -y --no-install-recommends "${apt_fast[@]}" "${missing[@]}"
else
    say "OS packages: all present"
fi

# ---------------------------------------------------- kernel filesystems
mountpoint -q /sys/kernel/tracing 2>/dev/null || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mountpoint -q /sys/kernel/debug 2>/dev/null || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

# ------------------------------------------------------------ Python venv
venv="${EBPF_LAB_VENV:-$here/.venv}"
py=/usr/bin/python3
[ -x "$py" ] || die "no /usr/bin/python3: install python3"
if [ ! -x "$venv/bin/python" ]; then
    say "creating the project venv in $venv"
    "$py" -m venv "$venv"
fi
# The versions come from the lock of this Python (lock/pythonX.Y.txt, made from
# pyproject.toml by `python3 scripts/lock.py`): the same packages on every
# machine, guest image and VM of that Python. A lock that pyproject.toml has
# moved away from is refused, naming the command that regenerates it.
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
lock=$("$py" "$here/scripts/lock.py" --check "$pyver" 2>&1) || die "${lock#lock: }"
stamp="$venv/.ebpf-lab-installed"
if [ ! -f "$stamp" ] || [ "$here/pyproject.toml" -nt "$stamp" ] || [ "$lock" -nt "$stamp" ] \
        || [ "$(cat "$stamp" 2>/dev/null)" != "$lock" ]; then
    say "installing Python packages into the venv (${lock#"$here"/})"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "${pip_fast[@]}" -r "$lock"
    "$venv/bin/python" -m pip install -q --no-deps -e "$here"
    echo "$lock" >"$stamp"
else
    say "Python packages: up to date"
fi

# ------------------------------------------ kernel headers (fallback tree)
# Writes nothing under /lib/modules; see ebpf_lab/_kernel.py.
"$venv/bin/python" -m ebpf_lab.kernel_headers --prepare || true

say "done. Check the machine with: $venv/bin/ebpf-lab doctor"
