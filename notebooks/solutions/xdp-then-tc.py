# ---
# jupyter:
#   ebpf_lab:
#     exercise: xdp-then-tc
#     version: teacher
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 05.2 · XDP runs first: drop at XDP, count at TC  ★★★
#
# *Lesson 05 — XDP vs TC vs iptables*
#
# Lesson 05 measured what a drop costs at each hook; the tutorial's argument rests on XDP running
# *earlier* than TC. Show the order directly: one program file, two hooks on the same interface.
#
# **Your task.**
# - `on_xdp()`: drop ICMP frames of at least `LIMIT` bytes (`XDP_DROP`), pass everything else;
# - `on_tc_ingress()`: drop nothing, and count, per IPv4 protocol, the packets and bytes (`skb->len`) that
#   reach TC in `reached_tc`.
#
# If the order is what the lesson says, TC never sees the big pings: the grader checks that `reached_tc`
# holds exactly the packets XDP let through.
#
# **Hints**
# - Both functions parse Ethernet then IPv4, each with its own bounds checks against its own `data_end`.
# - `reached_tc.lookup_or_try_init(&proto, &zero)`, then `__sync_fetch_and_add` on its fields.
# - The length of a frame counts every header: 14 (Ethernet) + 20 (IPv4) + 8 (ICMP) + the ping's payload.
# At TC it is `skb->len`; at XDP it is `data_end - data`.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check

# %% nbgrader={"grade": false, "grade_id": "answer-bpf", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-bpf"]
PROGRAM = r"""
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/in.h>
#include <uapi/linux/pkt_cls.h>

struct proto_stats {
    u64 packets;
    u64 bytes;
};

BPF_HASH(reached_tc, u32, struct proto_stats, 256);   /* IPv4 protocol -> what reached TC */

int on_xdp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    // ### BEGIN SOLUTION
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(struct ethhdr);

    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return XDP_PASS;
    if (ip->protocol == IPPROTO_ICMP && data_end - data >= LIMIT)
        return XDP_DROP;
    // ### END SOLUTION
    return XDP_PASS;
}

int on_tc_ingress(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;

    // ### BEGIN SOLUTION
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(struct ethhdr);

    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;
    u32 proto = ip->protocol;
    struct proto_stats zero = {};
    struct proto_stats *s = reached_tc.lookup_or_try_init(&proto, &zero);
    if (s) {
        __sync_fetch_and_add(&s->packets, 1);
        __sync_fetch_and_add(&s->bytes, skb->len);
    }
    // ### END SOLUTION
    return TC_ACT_OK;
}
"""

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It builds a fresh lab network (two network namespaces and a veth pair — never
# your machine's interfaces), attaches your program on the receiver's side, sends real pings, UDP
# datagrams and a TCP connection across, compares what arrived with what should have, and removes the network. `.data` of
# the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`. From a terminal:
# `sudo ebpf-lab check xdp-then-tc notebooks/exercises/xdp-then-tc.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-xdp-then-tc", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false} tags=["check-xdp-then-tc"]
"""Checks xdp-then-tc: on a lab network, on_xdp drops ICMP frames of LIMIT bytes or more and passes the rest;
on_tc_ingress passes everything and reached_tc counts exactly the packets and bytes XDP let through."""
check("xdp-then-tc", globals())
