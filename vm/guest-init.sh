#!/bin/bash
# PID 1 of the guest-kernel tier (installed as /sbin/ebpf-lab-init by
# vm/image.sh; booted by vm/run-guest.sh with init=/sbin/ebpf-lab-init).
#
# Mounts the kernel filesystems and the two 9p shares, runs the command the
# host left in the results share (cmd.sh), writes its output and exit status
# there, and powers the machine off. No systemd, no network, no login.
#
#   share "ebpflab"  the host's checkout, read-only; seen at /mnt/ebpflab
#                    through an overlay so that tests may write into it
#   share "results"  read-write: cmd.sh in; output.log, exit_status out
export PATH=/opt/ebpf-lab/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=dumb
export PYTHONPATH=/mnt/ebpflab:/opt/ebpf-lab/bccpath
export PYTHONDONTWRITEBYTECODE=1 EBPF_LAB_GUEST=1

say() { echo "[guest-init] $*" >/dev/console; }

poweroff_now() {
    sync
    umount /mnt/results 2>/dev/null
    echo o >/proc/sysrq-trigger
    sleep 30   # sysrq 'o' is asynchronous; never return as PID 1
}

fsmount() {  # fsmount TYPE DIR [OPTIONS]
    mkdir -p "$2"
    mountpoint -q "$2" && return 0
    mount -t "$1" ${3:+-o "$3"} "$1" "$2" || say "could not mount $1 on $2"
}

fsmount proc /proc
fsmount sysfs /sys
fsmount devtmpfs /dev
fsmount devpts /dev/pts
fsmount tmpfs /run mode=755
fsmount tmpfs /tmp mode=1777
fsmount tracefs /sys/kernel/tracing
fsmount debugfs /sys/kernel/debug
fsmount bpf /sys/fs/bpf
fsmount cgroup2 /sys/fs/cgroup
ln -sfn /proc/self/fd /dev/fd
# what udev makes on a booted system (nft 0.9 reads `-f -` as /dev/stdin)
for i in 0:stdin 1:stdout 2:stderr; do ln -sfn "/proc/self/fd/${i%%:*}" "/dev/${i#*:}"; done
hostname ebpf-lab-guest
ip link set lo up 2>/dev/null

modprobe -a 9pnet_virtio 9p overlay 2>/dev/null
opts=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /mnt/results /mnt/ebpflab /run/ebpflab-ro /run/ebpflab-rw
if ! mount -t 9p -o "$opts" results /mnt/results; then
    say "cannot mount the results share: nothing to do, powering off"
    poweroff_now
fi
if ! mount -t 9p -o "$opts,ro,cache=loose" ebpflab /run/ebpflab-ro; then
    echo "guest: cannot mount the checkout share (tag ebpflab)" >/mnt/results/output.log
    echo 125 >/mnt/results/exit_status
    poweroff_now
fi
# Writable view of the read-only checkout: writes stay in the guest's RAM.
mount -t tmpfs tmpfs /run/ebpflab-rw
mkdir -p /run/ebpflab-rw/upper /run/ebpflab-rw/work
if ! mount -t overlay overlay \
        -o lowerdir=/run/ebpflab-ro,upperdir=/run/ebpflab-rw/upper,workdir=/run/ebpflab-rw/work \
        /mnt/ebpflab 2>/dev/null; then
    say "overlay over 9p refused: the checkout is read-only in the guest"
    mount --bind /run/ebpflab-ro /mnt/ebpflab
fi

{
    echo "guest: kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/{print $2" kB"}' /proc/meminfo)"
    echo "guest: kprobe_events $( [ -e /sys/kernel/tracing/kprobe_events ] && echo present || echo MISSING)"
} >/mnt/results/guest-info
cat /mnt/results/guest-info >/dev/console

if [ -f /mnt/results/cmd.sh ]; then
    say "running the host's command"
    cd /mnt/ebpflab
    bash /mnt/results/cmd.sh </dev/null 2>&1 | tee /mnt/results/output.log
    rc=${PIPESTATUS[0]}
else
    echo "guest: no cmd.sh in the results share" >/mnt/results/output.log
    rc=125
fi
cd /
echo "$rc" >/mnt/results/exit_status.tmp && mv /mnt/results/exit_status.tmp /mnt/results/exit_status
say "command exited with status $rc; powering off"
poweroff_now
