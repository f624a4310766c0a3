#!/usr/bin/env bash
# Boot the guest-kernel tier's image (vm/image.sh; built if needed) under QEMU
# software emulation and run one command in it, over this checkout.
#
#   sudo vm/run-guest.sh [--suite S] [--timeout SECONDS] [--results DIR] [--image DIR] -- COMMAND [ARGS...]
#
# --suite boots that Debian release's image (bookworm, the default; trixie;
# bullseye: see vm/image.sh); EBPF_LAB_GUEST_SUITE=S does the same. --image
# boots a given image folder (from vm/image.sh) instead of building or reusing
# the one of the current recipe.
#
# In the guest, COMMAND runs as root in /mnt/ebpflab, a writable overlay of
# this checkout (shared read-only over 9p, tag "ebpflab"), with the image's
# venv first on PATH and PYTHONPATH=/mnt/ebpflab:/opt/ebpf-lab/bccpath.
# DIR (shared read-write, tag "results"; /mnt/results in the guest) receives:
#   output.log     the command's stdout and stderr
#   exit_status    its exit status
#   guest-info     kernel version, CPUs, memory, kprobe support
#   console.log    the guest's serial console (boot messages included)
# Exit status: the command's, or 124 if the guest ran out of time, 125 if it
# never reported one (boot failure: see console.log). The QEMU process is
# killed on timeout and when this script is interrupted.
#
# The image is opened with snapshot=on: the guest's writes never reach it.
# KVM is not used: `-accel tcg -cpu max,-avx2` (see below) runs a stock kernel wherever the
# host's /dev/kvm cannot (see /work/shared/MACHINE-NOTES.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
timeout_s=900
results=
image=
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) timeout_s=$2; shift 2 ;;
        --results) results=$2; shift 2 ;;
        --image) image=$2; shift 2 ;;
        --suite) export EBPF_LAB_GUEST_SUITE=$2; shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: vm/run-guest.sh [--suite S] [--timeout S] [--results DIR] [--image DIR] -- COMMAND [ARGS...]" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null \
    || { echo "run-guest: qemu-system-x86_64 is not installed (sudo scripts/setup.sh --test)" >&2; exit 2; }

say() { printf '[guest] %s\n' "$*" >&2; }

[ -n "$image" ] || image=$("$here/image.sh" | tail -1)
[ -f "$image/ok" ] || { echo "run-guest: no image (vm/image.sh printed '$image')" >&2; exit 2; }

if [ -z "$results" ]; then results=$(mktemp -d /tmp/ebpf-lab-guest.XXXXXX); fi
mkdir -p "$results"
results=$(cd "$results" && pwd)
rm -f "$results"/{cmd.sh,output.log,exit_status,exit_status.tmp,guest-info,console.log}
{
    echo "# written by vm/run-guest.sh; run by /sbin/ebpf-lab-init in the guest"
    # the emulator's race with live-patched static keys (vm/hold-static-keys.sh)
    echo "bash /mnt/ebpflab/vm/hold-static-keys.sh"
    # a software-emulated machine, often beside others: the time bounds that depend on it take their
    # wider defaults (ebpf_lab/_kernel.py: EMULATED)
    echo "export EBPF_LAB_EMULATED=1"
    printf 'exec'; printf ' %q' "$@"; echo
} >"$results/cmd.sh"

qemu_pid=
stop_qemu() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        say "stopping QEMU (pid $qemu_pid)"
        kill -TERM "$qemu_pid" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || return 0; sleep 0.3; done
        kill -KILL "$qemu_pid" 2>/dev/null || true
    fi
}
trap stop_qemu EXIT
trap 'stop_qemu; exit 130' INT TERM HUP

# The emulated CPU: everything TCG offers but AVX2. Under this host's QEMU (7.2), numpy's AVX2 code
# (an AVX2 gather, vpgatherqd, in _multiarray_umath) took a general protection fault now and then
# in the trixie guest, killing the notebook kernel that ran it (SIGSEGV, seen in the guest's kernel
# log); without AVX2 numpy runs its SSE/AVX paths. Nothing the lessons test depends on AVX2.
cpu=${EBPF_LAB_GUEST_CPU:-max,-avx2}
say "booting $(head -1 "$image/manifest.txt") under TCG (timeout ${timeout_s}s); console: $results/console.log"
t0=$(date +%s)
qemu-system-x86_64 \
    -name ebpf-lab-guest -accel tcg -cpu "$cpu" -m 4096 -smp 2 \
    -nodefaults -no-user-config -display none -vga none -no-reboot -nic none \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 init=/sbin/ebpf-lab-init panic=-1 quiet loglevel=4" \
    -drive "file=$image/image.ext4,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$repo,mount_tag=ebpflab,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$results,mount_tag=results,security_model=none" \
    -serial "file:$results/console.log" \
    </dev/null &
qemu_pid=$!

# Hard timeout: poll, so that the INT/TERM trap runs promptly meanwhile.
deadline=$((t0 + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
        say "timed out after ${timeout_s}s"
        stop_qemu
        wait "$qemu_pid" 2>/dev/null || true
        exit 124
    fi
    sleep 1
done
qemu_rc=0; wait "$qemu_pid" || qemu_rc=$?
qemu_pid=
say "guest finished in $(( $(date +%s) - t0 )) s (QEMU exit status $qemu_rc)"

if [ ! -s "$results/exit_status" ]; then
    say "the guest reported no exit status; last console lines:"
    tail -n 30 "$results/console.log" >&2 || true
    exit 125
fi
exit "$(cat "$results/exit_status")"
