#!/bin/bash
# Hold the kernel's network static keys on for a whole test run under QEMU's
# software emulation (the guest-kernel tier, the lab VM in CI).
#
# Why: attaching the first TC or generic-XDP program anywhere flips a static key
# (ingress_needed_key, egress_needed_key, generic_xdp_needed_key), and the
# kernel live-patches the branch in the receive path while the other vCPU may
# be running it. On hardware that is safe; under TCG it is not always: a trixie
# guest (6.12) panicked in CI with RIP one byte into the patched instruction,
# __netif_receive_skb_core+0xe9 (the ingress_needed_key branch), while notebook
# 04 attached its classifier and veth traffic flowed ("Fatal exception in
# interrupt"). With one clsact qdisc and one generic-XDP program held for the
# whole run (on a veth in a namespace of their own), the lessons' attaches and
# detaches only count the keys up and down: the code is never patched again.
# The same race hit a trixie guest once in netif_rx_internal's timestamp branch
# (netstamp_needed_key, turned on while any socket asks for receive timestamps,
# as every ping does, and off again later): one socket with SO_TIMESTAMP, kept
# open for the whole run by a sleeping process in the namespace, holds it on.
#
# The holder lives in its own namespace, named outside the lab's own prefix
# ("ebl"), so that no lesson sees it and no leak check counts it. Idempotent;
# failures are reported and never fatal (a run without the holder is only
# exposed to the emulator's race again). TCG_KEYS_NS=NAME uses another namespace
# (a trial on a machine that runs a test tier at the same time).
ns=${TCG_KEYS_NS:-tcg-static-keys}
dev=keys0
say() { echo "hold-static-keys: $*" >&2; }

if ip netns list 2>/dev/null | grep -qw "$ns"; then
    exit 0
fi
ip netns add "$ns" || { say "could not add namespace $ns"; exit 0; }
# a veth pair: the lessons' own kind of device (a kernel without the dummy driver has veth)
ip -n "$ns" link add "$dev" type veth peer name "${dev}p" && ip -n "$ns" link set "$dev" up \
    || { say "could not make the veth device $dev"; exit 0; }
held=()
if tc -n "$ns" qdisc add dev "$dev" clsact; then held+=(TC); else say "could not add a clsact qdisc: the TC keys are not held"; fi
# A program of one instruction, built without any header (none may match this kernel) and attached
# by iproute2 in generic (skb) mode; it stays with the device until the namespace goes.
tmp=$(mktemp -d)
printf '%s\n' '__attribute__((section("xdp"), used)) int tcg_keys_hold(void *ctx) { return 2; /* XDP_PASS */ }' \
    'char _license[] __attribute__((section("license"), used)) = "GPL";' >"$tmp/hold.c"
if clang -O2 -target bpf -c "$tmp/hold.c" -o "$tmp/hold.o" >"$tmp/log" 2>&1 \
        && ip -n "$ns" link set dev "$dev" xdpgeneric obj "$tmp/hold.o" sec xdp >>"$tmp/log" 2>&1; then
    held+=(generic-XDP)
else
    tail -5 "$tmp/log" >&2
    say "could not attach a generic-XDP program: the XDP key is not held"
fi
rm -rf "$tmp"
# SO_TIMESTAMP is 29 on every architecture the lab runs on (asm-generic/socket.h, x86 and arm64 alike).
if command -v python3 >/dev/null; then
    ip netns exec "$ns" setsid python3 -c 'import signal, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 29, 1)
signal.pause()' </dev/null >/dev/null 2>&1 &
    holder=$!
    sleep 1
fi
if [ -n "${holder:-}" ] && kill -0 "$holder" 2>/dev/null; then
    held+=(receive-timestamps)
else
    say "could not keep a timestamping socket open (python3): the receive-timestamp key is not held"
fi
[ "${#held[@]}" = 0 ] || say "static keys held on for this run: ${held[*]} (with $dev in namespace $ns)"
exit 0
