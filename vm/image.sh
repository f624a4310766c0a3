#!/usr/bin/env bash
# Build, or reuse, the guest-kernel tier's image: a Debian release with its
# stock kernel (which has kprobes, unlike some hosts'), the matching headers,
# that release's own bcc, clang, bpftrace and Python, and a venv with the
# project's locked Python dependencies for that Python. Used by
# vm/run-guest.sh; booted under QEMU by tests/guest/.
#
#   sudo vm/image.sh [--suite S]          build if needed; print the image folder on stdout
#   sudo vm/image.sh [--suite S] --hash   print the recipe hash and exit
#
# Suites (one recipe for all; EBPF_LAB_GUEST_SUITE=S is the same as --suite S):
#   bookworm   Debian 12, kernel 6.1, bcc 0.26, clang 14, Python 3.11  (default)
#   trixie     Debian 13, kernel 6.12, bcc 0.31, clang 19, Python 3.13
#   bullseye   Debian 11, kernel 5.10, bcc 0.18, clang 11, Python 3.9
#
# The bookworm image lives in $EBPF_LAB_GUEST_CACHE (default
# /var/cache/ebpf-lab/guest), every other suite's in a folder of its own,
# $EBPF_LAB_GUEST_CACHE-<suite> (e.g. /var/cache/ebpf-lab/guest-trixie), so
# that pruning one suite's old images never touches another's. Each is kept
# under a hash of the recipe: this script, vm/guest-packages.txt,
# vm/guest-init.sh, the suite and the lock file of the suite's Python
# (lock/pythonX.Y.txt, made from pyproject.toml by `python3 scripts/lock.py`;
# a lock that pyproject.toml has moved away from is refused).
# A changed recipe builds a new image; an unchanged one is reused. The build
# runs in <hash>.tmp.<pid>/ and is renamed into place only when complete.
# Progress goes to stderr, the full log to build.log in the image folder.
#
# Needs root, debootstrap, e2fsprogs and Debian's mirror. Python wheels are
# downloaded on the host (it reaches PyPI) and installed offline in the chroot.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
mirror=${EBPF_LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${EBPF_LAB_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=${EBPF_LAB_GUEST_SUITE:-bookworm}
if [ "${1:-}" = "--suite" ]; then suite=${2:?--suite needs a name}; shift 2; fi
# Each suite's python3 (the wheels are chosen for it) and glibc (their manylinux tags).
case "$suite" in
    bookworm) guest_python=3.11; glibc_minor=36 ;;
    trixie)   guest_python=3.13; glibc_minor=41 ;;
    bullseye) guest_python=3.9;  glibc_minor=31 ;;
    *) printf '[image] error: unknown suite %s (bullseye, bookworm or trixie)\n' "$suite" >&2; exit 2 ;;
esac
export EBPF_LAB_GUEST_SUITE=$suite   # the --stage-rootfs re-run below sees the same suite
base_cache=${EBPF_LAB_GUEST_CACHE:-/var/cache/ebpf-lab/guest}
if [ "$suite" = bookworm ]; then cache=$base_cache; else cache=$base_cache-$suite; fi
keep_images=2       # finished images kept in the cache (newest first)

export EBPF_LAB_IMAGE_T0=${EBPF_LAB_IMAGE_T0:-$(date +%s)}
say() { printf '[image +%3ds] %s\n' "$(( $(date +%s) - EBPF_LAB_IMAGE_T0 ))" "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

# Host Python used for parsing pyproject.toml and downloading wheels.
host_py=/usr/bin/python3
[ -x "$repo/.venv/bin/python" ] && host_py=$repo/.venv/bin/python

# The locked requirements of the guest's Python (the same versions setup.sh installs on a
# machine with that Python); dies naming the regenerating command when the lock is stale.
lock_file() {
    local out
    out=$(/usr/bin/python3 "$repo/scripts/lock.py" --check "$guest_python" 2>&1) \
        || die "${out#lock: }"
    echo "$out"
}
requirements() { grep -E '^[A-Za-z0-9]' "${lock:-$(lock_file)}"; }

# vm/guest-packages.txt, one package a word; a line ending in "[not S ...]" is
# left out on those suites (e.g. bpftool, which bullseye does not package).
packages() {
    sed -e 's/#.*//' "$here/guest-packages.txt" | awk -v suite="$suite" '
        match($0, /\[not [^]]*\]/) {
            n = split(substr($0, RSTART + 5, RLENGTH - 6), skip, " ")
            for (i = 1; i <= n; i++) if (skip[i] == suite) next
            $0 = substr($0, 1, RSTART - 1)
        }
        { for (i = 1; i <= NF; i++) print $i }'
}

recipe_hash() {
    {
        echo "suite=$suite python=$guest_python"
        sha256sum "$here/image.sh" "$here/guest-packages.txt" "$here/guest-init.sh" | cut -d' ' -f1
        requirements
    } | sha256sum | cut -c1-16
}

# Refuse to delete a folder that has anything mounted under it.
safe_rm() {
    local d=$1
    [ -e "$d" ] || return 0
    if findmnt -rn -o TARGET | grep -qF -- "$(realpath "$d")"; then
        die "$d still has mounts under it; unmount them first (findmnt | grep $d)"
    fi
    rm -rf --one-file-system -- "$d"
}

# --------------------------------------------------- stage run in a private
# mount namespace: every mount made here (debootstrap's, /proc for apt)
# disappears with the process, whatever happens to it.
if [ "${1:-}" = "--stage-rootfs" ]; then
    tmp=$2; rootfs=$tmp/rootfs
    log=$tmp/build.log
    chr() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
                DEBIAN_FRONTEND=noninteractive chroot "$rootfs" "$@"; }

    say "debootstrap --variant=minbase $suite (from $mirror)"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >>"$log" 2>&1 \
        || die "debootstrap failed; see $log"

    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    echo ebpf-lab-guest >"$rootfs/etc/hostname"
    echo "/dev/vda / ext4 rw,relatime 0 1" >"$rootfs/etc/fstab"
    # Written before initramfs-tools is installed (kept with --force-confold),
    # so the first initrd already holds what the guest boots from: the Debian
    # kernel builds virtio, ext4 and 9p as modules.
    mkdir -p "$rootfs/etc/initramfs-tools"
    printf '%s\n' virtio_pci virtio_blk virtio_ring ext4 9pnet 9pnet_virtio 9p \
        >"$rootfs/etc/initramfs-tools/modules"
    mount -t proc proc "$rootfs/proc"
    mount -t sysfs sysfs "$rootfs/sys"

    # EBPF_LAB_IMAGE_STAGE=base (added for vm/vagrant-box.sh, the VM tier's
    # Vagrant box): stop here with the shared base, i.e. debootstrap, the
    # sources above and the stock kernel with its initrd; the caller adds the
    # rest. One Debian-guest recipe for both tiers.
    if [ "${EBPF_LAB_IMAGE_STAGE:-}" = base ]; then
        say "apt-get install the stock kernel and initramfs-tools (base stage)"
        chr apt-get update >>"$log" 2>&1 || die "apt-get update in the chroot failed; see $log"
        chr apt-get install -y --no-install-recommends \
            -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef \
            linux-image-amd64 initramfs-tools >>"$log" 2>&1 || die "apt-get install in the chroot failed; see $log"
        umount "$rootfs/sys" "$rootfs/proc"
        exit 0
    fi

    mapfile -t pkgs < <(packages)
    say "apt-get install ${#pkgs[@]} packages (kernel, headers, bcc, clang, ...)"
    chr apt-get update >>"$log" 2>&1 || die "apt-get update in the chroot failed; see $log"
    # --force-unsafe-io: no fsync per unpacked file (a throwaway image; the
    # ext4 image is made from the finished folder).
    chr apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-unsafe-io \
        "${pkgs[@]}" >>"$log" 2>&1 || die "apt-get install in the chroot failed; see $log"

    say "venv /opt/ebpf-lab/venv with the project's requirements (offline)"
    chr python3 -m venv /opt/ebpf-lab/venv >>"$log" 2>&1 || die "python3 -m venv failed; see $log"
    chr /opt/ebpf-lab/venv/bin/python -m pip install --no-cache-dir --no-index --no-deps \
        --find-links /var/tmp/wheels -r /var/tmp/wheels/requirements.txt >>"$log" 2>&1 \
        || die "pip install in the chroot failed; see $log"
    # bcc is the OS's (python3-bpfcc); expose just that package to the venv.
    mkdir -p "$rootfs/opt/ebpf-lab/bccpath"
    ln -sfn /usr/lib/python3/dist-packages/bcc "$rootfs/opt/ebpf-lab/bccpath/bcc"
    install -m 755 "$here/guest-init.sh" "$rootfs/sbin/ebpf-lab-init"

    # Checks: one kernel, its headers, the boot modules in the initrd, bcc.
    mapfile -t kernels < <(cd "$rootfs/boot" && ls vmlinuz-* 2>/dev/null)
    [ "${#kernels[@]}" = 1 ] || die "expected one kernel in the image, found: ${kernels[*]:-none}"
    kver=${kernels[0]#vmlinuz-}
    # (inside the chroot: bullseye's build link is absolute, /usr/src/linux-headers-<kver>)
    chr test -e "/lib/modules/$kver/build/Makefile" || die "no headers for $kver in the image (linux-headers-amd64 and linux-image-amd64 out of step?)"
    [ -s "$rootfs/boot/initrd.img-$kver" ] || die "no initrd for $kver"
    inird=$(chr lsinitramfs "/boot/initrd.img-$kver")
    # A module is either in the initrd or built into the kernel (trixie's 6.12 builds virtio_pci in).
    for m in virtio_pci virtio_blk ext4 9p 9pnet_virtio; do
        grep -q "/$m\.ko" <<<"$inird" \
            || grep -q "/$m\.ko" "$rootfs/lib/modules/$kver/modules.builtin" 2>/dev/null \
            || die "module $m is neither in the initrd nor built into the kernel"
    done
    chr /opt/ebpf-lab/venv/bin/python -c 'import sys; sys.path.append("/opt/ebpf-lab/bccpath"); import bcc, pytest, numpy; print("bcc", bcc.__file__)' \
        >>"$log" 2>&1 || die "the guest venv cannot import bcc/pytest/numpy; see $log"

    cp "$rootfs/boot/vmlinuz-$kver" "$tmp/vmlinuz"
    cp "$rootfs/boot/initrd.img-$kver" "$tmp/initrd.img"
    {
        echo "kernel $kver"
        echo "suite $suite"
        chr dpkg-query -W -f='${Package} ${Version}\n' "linux-image-$kver" "linux-headers-$kver" python3-bpfcc clang bpftrace python3
        chr /opt/ebpf-lab/venv/bin/python -m pip freeze
    } >"$tmp/manifest.txt"

    chr apt-get clean
    rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/tmp/wheels"
    umount "$rootfs/sys" "$rootfs/proc"
    exit 0
fi

# ---------------------------------------------------------------- main
lock=$(lock_file)   # dies here, naming `python3 scripts/lock.py`, when the lock is stale
hash=$(recipe_hash)
[ "${1:-}" = "--hash" ] && { echo "$hash"; exit 0; }
[ $# -eq 0 ] || die "unknown option '$1' (usage: vm/image.sh [--suite S] [--hash])"

final=$cache/$hash
if [ -f "$final/ok" ]; then
    touch "$final/ok"
    say "reusing $final ($(head -1 "$final/manifest.txt"))"
    echo "$final"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "building the guest image needs root (debootstrap, chroot): run it with sudo"
for tool in debootstrap mkfs.ext4 unshare chroot; do
    command -v "$tool" >/dev/null || die "$tool is not installed (sudo scripts/setup.sh --test)"
done

mkdir -p "$cache"
exec 9>"$cache/.$hash.lock"
if ! flock -n 9; then
    say "another build of $hash is running; waiting for it"
    flock 9
fi
if [ -f "$final/ok" ]; then echo "$final"; exit 0; fi

# Leftovers of an interrupted build (its mount namespace died with it).
for old in "$cache/$hash".tmp.* "$final"; do
    [ -e "$old" ] && { say "removing the unfinished build $old"; safe_rm "$old"; }
done

tmp=$cache/$hash.tmp.$$
mkdir -p "$tmp"
log=$tmp/build.log
stage_pid=
on_exit() {
    local rc=$?
    if [ -n "$stage_pid" ] && kill -0 "$stage_pid" 2>/dev/null; then
        kill -TERM -- "-$stage_pid" 2>/dev/null || true   # its process group: apt, dpkg in the chroot
        for _ in 1 2 3; do kill -0 "$stage_pid" 2>/dev/null || break; sleep 1; done
        kill -KILL -- "-$stage_pid" 2>/dev/null || true
        wait "$stage_pid" 2>/dev/null || true
    fi
    if [ "$rc" != 0 ] && [ -d "$tmp" ]; then
        cp "$log" "$cache/$hash.failed.log" 2>/dev/null || true
        say "build failed; log kept in $cache/$hash.failed.log"
        safe_rm "$tmp" || true
    fi
}
trap on_exit EXIT
trap 'exit 143' INT TERM HUP   # so that on_exit runs when the build is stopped
say "building the guest image $hash in $tmp (log: $log)"

# 1. wheels on the host, for the guest's Python (bookworm: CPython 3.11), at the lock's versions.
mkdir -p "$tmp/wheels"
requirements >"$tmp/wheels/requirements.txt"
say "pip download: the $(wc -l <"$tmp/wheels/requirements.txt") packages of ${lock#"$repo"/} for CPython $guest_python"
# pip expands only manylinux2014/2010 to older tags: list the suite's glibc .. 2.17.
plats=(); for n in $(seq "$glibc_minor" -1 17); do plats+=(--platform "manylinux_2_${n}_x86_64"); done
"$host_py" -m pip download --quiet --no-deps --dest "$tmp/wheels" --only-binary=:all: \
    --python-version "$guest_python" --implementation cp --abi "cp${guest_python/./}" \
    "${plats[@]}" --platform manylinux2014_x86_64 --platform any \
    -r "$tmp/wheels/requirements.txt" >>"$log" 2>&1 \
    || die "pip download failed; see $log"

# 2. the root filesystem, in a private mount namespace.
mkdir -p "$tmp/rootfs/var/tmp"
mv "$tmp/wheels" "$tmp/rootfs/var/tmp/wheels"
# In the background and waited for, so that the INT/TERM trap runs at once and
# stops the stage (apt in the chroot) with everything it started.
setsid unshare --mount --propagation private -- "$here/image.sh" --stage-rootfs "$tmp" &
stage_pid=$!
wait "$stage_pid" || die "building the root filesystem failed; see $log"
stage_pid=

# 3. the ext4 image, made from the folder (no loop mount).
used_mb=$(du -sm --one-file-system "$tmp/rootfs" | cut -f1)
size_mb=$(( used_mb + 1024 )); [ "$size_mb" -lt 3072 ] && size_mb=3072
say "mkfs.ext4 -d rootfs (${used_mb} MB used) -> image.ext4 (${size_mb} MB, sparse)"
mkfs.ext4 -q -F -L ebpflab-root -d "$tmp/rootfs" "$tmp/image.ext4" "${size_mb}M" >>"$log" 2>&1 \
    || die "mkfs.ext4 failed; see $log"
safe_rm "$tmp/rootfs"

echo "$hash" >"$tmp/ok"
mv "$tmp" "$final"
log=$final/build.log
rm -f "$cache/$hash.failed.log"
say "done in $(( $(date +%s) - EBPF_LAB_IMAGE_T0 )) s: $final ($(head -1 "$final/manifest.txt"))"

# Keep the newest few images: each holds ~2-3 GB.
ls -1dt "$cache"/*/ok 2>/dev/null | tail -n +$((keep_images + 1)) | while read -r stale; do
    d=$(dirname "$stale")
    [ "$d" = "$final" ] && continue
    say "pruning the old image $d"
    safe_rm "$d" || true
done
echo "$final"
