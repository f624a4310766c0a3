#!/usr/bin/env bash
# Build a small local Vagrant box (libvirt provider) from Debian packages, for
# CI: public boxes cannot be downloaded on the CI machine, so the test tier
# brings the project's Vagrantfile up on this box instead (EBPF_LAB_BOX=...).
#
#   vm/vagrant-box.sh build [--no-seed]   build (or reuse) the cached box; prints its folder
#   vm/vagrant-box.sh path                    print the cache folder for the current recipe
#
# The cache folder holds: ebpf-lab.box (tar: box.img qcow2 + metadata.json),
# vmlinuz, initrd.img and cmdline. The image has no bootloader: libvirt boots
# vmlinuz/initrd directly (Vagrantfile: EBPF_LAB_LIBVIRT_KERNEL/_INITRD/_CMDLINE).
#
# The box is what a public box gives a learner, no more: Debian bookworm with
# its stock kernel (kprobes, BTF), systemd, openssh-server, sudo, rsync, a
# `vagrant` user with Vagrant's well-known insecure key and passwordless sudo,
# DHCP on eth0. Everything the lab needs is installed by provisioning
# (scripts/setup.sh) as on a laptop. Two additions, both for this network:
#   - the host's CA trust store: this network re-signs TLS (MACHINE-NOTES), as
#     a corporate proxy would, so pip inside the VM needs the host's CAs;
#   - unless --no-seed, the .deb files that scripts/setup.sh will install
#     are pre-downloaded into the box's apt cache (/var/cache/apt/archives),
#     and the Python wheels its `pip install` resolves into a local wheel
#     folder that /etc/pip.conf points pip at: provisioning still runs
#     apt-get and pip for real, it just does not fetch from the network under
#     software emulation (where pip alone spends minutes parsing PyPI's index).
#
# Stage 1 is vm/image.sh's (the guest-kernel tier's) base stage: one recipe.
# Root only (debootstrap, chroot). Runs on Debian/Ubuntu hosts with
# debootstrap, qemu-utils and e2fsprogs (scripts/setup.sh --test installs them).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
suite=${EBPF_LAB_BOX_SUITE:-bookworm}
mirror=${EBPF_LAB_BOX_MIRROR:-http://deb.debian.org/debian}
cache_root=${EBPF_LAB_BOX_CACHE:-/var/cache/ebpf-lab/vagrant-box}
disk_gb=16
cmdline="root=/dev/vda rw console=ttyS0 net.ifnames=0"

say() { printf '\033[1m[vagrant-box]\033[0m %s\n' "$*" >&2; }
die() { printf '[vagrant-box] error: %s\n' "$*" >&2; exit 1; }

# Bind-mount the kernel filesystems a chroot's package scripts need; undone
# by unmount_chroot (callers also run it from their EXIT trap, so an error
# leaves no mounts behind).
mount_chroot() {
    local r=$1
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"; mount --make-rslave "$r/sys"
    mount --rbind /dev "$r/dev"; mount --make-rslave "$r/dev"
}
unmount_chroot() {
    local r=$1 m
    for m in dev sys proc; do
        mountpoint -q "$r/$m" 2>/dev/null && umount -R "$r/$m" 2>/dev/null || umount -lR "$r/$m" 2>/dev/null || true
    done
}
# rm -rf a build folder only once nothing is mounted below it (a leftover
# rbind of /dev or /sys must never be deleted through).
safe_remove() {
    local w=$1
    [ -d "$w" ] || return 0
    unmount_chroot "$w/rootfs"
    if grep -q " $w/" /proc/mounts; then
        echo "[vagrant-box] not removing $w: still mounted below it" >&2; return 1
    fi
    rm -rf "$w"
}
in_chroot() { local r=$1; shift; DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 chroot "$r" "$@"; }

# ------------------------------------------------------------------ stage 1
# The shared Debian-guest base: vm/image.sh's root-filesystem stage (the
# guest-kernel tier's recipe) stopped after debootstrap, apt sources and the
# stock kernel with its initrd (EBPF_LAB_IMAGE_STAGE=base). One recipe for
# both tiers; it runs in a private mount namespace, so its mounts cannot leak.
stage_rootfs() {
    local work=$1
    grep -q 'EBPF_LAB_IMAGE_STAGE:-}" = base' "$here/vm/image.sh" \
        || die "vm/image.sh has no base stage (EBPF_LAB_IMAGE_STAGE=base): the shared recipe changed"
    say "base root filesystem: vm/image.sh --stage-rootfs (base stage; log: $work/build.log)"
    EBPF_LAB_IMAGE_STAGE=base unshare --mount --propagation private -- \
        bash "$here/vm/image.sh" --stage-rootfs "$work"
    [ -e "$work/rootfs/vmlinuz" ] || die "the base stage made no kernel"
    # The guest-kernel tier keeps services from starting in its chroot; a
    # Vagrant box must start them.
}

# ------------------------------------------------------------------ stage 2
# What makes it a Vagrant box.
stage_vagrant() {
    local r=$1 seed=$2
    mount_chroot "$r"
    # The base stage boots with the guest tier's own init; a box boots systemd.
    say "systemd, openssh-server, sudo, rsync, DHCP client, CA certificates"
    in_chroot "$r" apt-get install -y -qq --no-install-recommends \
        systemd-sysv udev dbus kmod openssh-server sudo rsync ifupdown isc-dhcp-client \
        ca-certificates iproute2 procps less curl >/dev/null
    [ -x "$r/sbin/init" ] || die "no /sbin/init in the box"
    echo "ebl-box" > "$r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tebl-box\n' > "$r/etc/hosts"
    printf '/dev/vda\t/\text4\terrors=remount-ro\t0\t1\n' > "$r/etc/fstab"
    printf 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n' \
        > "$r/etc/network/interfaces"
    # Classic names whatever the kernel command line says: eth0 above.
    mkdir -p "$r/etc/systemd/network"; ln -sf /dev/null "$r/etc/systemd/network/99-default.link"
    in_chroot "$r" useradd -m -s /bin/bash -U vagrant
    echo "vagrant:vagrant" | in_chroot "$r" chpasswd
    echo 'vagrant ALL=(ALL) NOPASSWD:ALL' > "$r/etc/sudoers.d/vagrant"; chmod 440 "$r/etc/sudoers.d/vagrant"
    local key; key=$(vagrant_pubkey)
    install -d -m 700 -o 1000 -g 1000 "$r/home/vagrant/.ssh"
    install -m 600 -o 1000 -g 1000 "$key" "$r/home/vagrant/.ssh/authorized_keys"
    [ "$(stat -c %u "$r/home/vagrant")" = 1000 ] || die "vagrant user is not uid 1000"
    # sshd: no DNS lookups (slow boots without a resolver), fresh host keys per VM.
    echo 'UseDNS no' > "$r/etc/ssh/sshd_config.d/vagrant.conf"
    rm -f "$r"/etc/ssh/ssh_host_*
    cat > "$r/etc/systemd/system/ssh-hostkeys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
[Install]
WantedBy=multi-user.target
UNIT
    ln -sf /etc/systemd/system/ssh-hostkeys.service "$r/etc/systemd/system/multi-user.target.wants/ssh-hostkeys.service"
    # The host's trust store: this network re-signs TLS (see MACHINE-NOTES).
    # Local CAs are kept where update-ca-certificates finds them again.
    if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
        cp -a /usr/local/share/ca-certificates/. "$r/usr/local/share/ca-certificates/"
        in_chroot "$r" update-ca-certificates >/dev/null 2>&1 || true
    fi
    cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"
    if [ "$seed" = 1 ]; then
        # The exact package list of scripts/setup.sh, computed inside the guest's apt.
        cp "$here/scripts/setup.sh" "$r/tmp/ebpf-lab-setup.sh"
        local pkgs; pkgs=$(in_chroot "$r" bash /tmp/ebpf-lab-setup.sh --print-packages)
        rm -f "$r/tmp/ebpf-lab-setup.sh"
        say "pre-seeding the apt cache: $pkgs"
        # shellcheck disable=SC2086
        in_chroot "$r" apt-get install -y -qq --download-only --no-install-recommends $pkgs >/dev/null
        say "apt cache: $(du -sh "$r/var/cache/apt/archives" | cut -f1)"
        seed_wheels "$r"
    else
        in_chroot "$r" apt-get clean
    fi
    rm -f "$r/usr/sbin/policy-rc.d"
    # dpkg without an fsync per file, as in most CI images: provisioning
    # unpacks ~1 GB of toolchain under software emulation. A throw-away box.
    echo force-unsafe-io > "$r/etc/dpkg/dpkg.cfg.d/ebpf-lab-box-unsafe-io"
    unmount_chroot "$r"
}

# The Python side of the seed: wheels for the box's CPython (bookworm: 3.11)
# at exactly the versions of its lock (lock/python3.11.txt, what setup.sh
# installs there), plus the build requirements of the editable install,
# downloaded on the host and offered to pip in the box through /etc/pip.conf
# (find-links, no index). Under software emulation pip spends minutes parsing
# PyPI's index pages; this keeps the real `pip install` of scripts/setup.sh,
# minus the network.
seed_wheels() {
    local r=$1 wheels=$1/var/cache/ebpf-lab/wheels py=/usr/bin/python3 plats=() n lock
    [ -x "$here/.venv/bin/python" ] && py=$here/.venv/bin/python
    mkdir -p "$wheels"
    lock=$(/usr/bin/python3 "$here/scripts/lock.py" --check 3.11 2>&1) || die "${lock#lock: }"
    grep -E '^[A-Za-z0-9]' "$lock" > "$wheels/requirements.txt"
    "$py" - "$here/pyproject.toml" >> "$wheels/requirements.txt" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    doc = tomllib.load(f)
reqs = list(doc.get("build-system", {}).get("requires", []))
reqs += ["pip", "wheel"]
print("\n".join(reqs))
PY
    for n in $(seq 36 -1 17); do plats+=(--platform "manylinux_2_${n}_x86_64"); done
    say "pre-seeding wheels: the ${lock#"$here"/} versions + build requirements ($(wc -l <"$wheels/requirements.txt") lines)"
    "$py" -m pip download --quiet --dest "$wheels" --only-binary=:all: \
        --python-version 3.11 --implementation cp --abi cp311 \
        "${plats[@]}" --platform manylinux2014_x86_64 --platform any \
        -r "$wheels/requirements.txt" >&2
    # no-compile: byte-compiling every installed module under emulation costs
    # minutes; Python compiles what is imported, when it is imported.
    printf '[global]\nfind-links = /var/cache/ebpf-lab/wheels\nno-index = true\nno-compile = true\n' > "$r/etc/pip.conf"
    say "wheels: $(ls "$wheels" | wc -l) files, $(du -sh "$wheels" | cut -f1)"
}

vagrant_pubkey() {
    local k
    for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
             /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub \
             /usr/lib/ruby/vendor_ruby/vagrant/keys/vagrant.pub; do
        [ -f "$k" ] && { echo "$k"; return; }
    done
    die "Vagrant's insecure public key (keys/vagrant.pub) not found: install vagrant"
}

# ------------------------------------------------------------------ stage 3
stage_pack() {
    local r=$1 out=$2
    say "ext4 image (${disk_gb}G sparse) -> qcow2"
    truncate -s "${disk_gb}G" "$out/disk.raw"
    mkfs.ext4 -q -F -L root -d "$r" "$out/disk.raw"
    qemu-img convert -O qcow2 "$out/disk.raw" "$out/box.img"
    rm -f "$out/disk.raw"
    printf '{"provider":"libvirt","format":"qcow2","virtual_size":%d}\n' "$disk_gb" > "$out/metadata.json"
    cp -L "$r/vmlinuz" "$out/vmlinuz"; cp -L "$r/initrd.img" "$out/initrd.img"
    echo "$cmdline" > "$out/cmdline"
    tar -C "$out" -cf "$out/ebpf-lab.box" metadata.json box.img
    rm -f "$out/box.img"
}

recipe_key() {
    cat "$here/vm/vagrant-box.sh" "$here/vm/image.sh" "$here/scripts/setup.sh" "$here/pyproject.toml" \
        "$here/lock/python3.11.txt" \
        | sha256sum | cut -c1-12
}

build() {
    local seed=1
    for a in "$@"; do
        case "$a" in --no-seed) seed=0 ;; *) die "unknown option '$a'" ;; esac
    done
    [ "$(id -u)" = 0 ] || die "building the box needs root (debootstrap, chroot)"
    local key dest
    key=$(recipe_key)-seed$seed
    dest=$cache_root/$key
    if [ -f "$dest/ebpf-lab.box" ]; then
        say "cached: $dest"; echo "$dest"; return
    fi
    mkdir -p "$cache_root"
    local work; work=$(mktemp -d "$cache_root/.build-XXXXXX")
    trap "safe_remove '$work'" EXIT
    trap 'exit 143' TERM INT HUP   # so that the EXIT trap runs
    local t0=$SECONDS
    stage_rootfs "$work"
    stage_vagrant "$work/rootfs" "$seed"
    mkdir "$work/out"
    stage_pack "$work/rootfs" "$work/out"
    # Only the current recipe is kept.
    find "$cache_root" -mindepth 1 -maxdepth 1 -type d ! -name '.build-*' -exec rm -rf {} +
    mv "$work/out" "$dest"
    safe_remove "$work"; trap - EXIT
    say "built in $((SECONDS - t0)) s: $dest ($(du -sh "$dest" | cut -f1))"
    echo "$dest"
}

case "${1:-}" in
    build) shift; build "$@" ;;
    path) echo "$cache_root/$(recipe_key)-seed1" ;;
    -h|--help|"") sed -n '2,8p' "$0" ;;
    *) die "unknown command '$1' (try --help)" ;;
esac
