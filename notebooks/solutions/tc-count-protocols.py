# ---
# jupyter:
#   ebpf_lab:
#     exercise: tc-count-protocols
#     version: teacher
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 04.1 · Count instead of drop  ★☆☆
#
# *Lesson 04 — the TC classifier*
#
# The tutorial's classifier drops big packets. Before dropping anything in production, one first
# *measures*: change the classifier so that it **drops nothing** and counts, per IPv4 protocol, how many
# packets and how many bytes came in.
#
# **Your task, part 1 (C).** The parsing is given: after it, `ip` points at the IPv4 header of an IPv4
# packet (anything else has already been let through). Complete `on_tc_ingress()` so that
# `by_proto[ip->protocol]` holds the number of packets and the sum of their lengths (`skb->len`, the
# whole frame), and the packet always passes.
#
# **Your task, part 2 (Python).** The grader calls `protocol_table(stats)` with `stats` a dict
# `{protocol number: {"packets": n, "bytes": b}}`. Return a DataFrame with columns `protocol` (the name from
# `PROTO_NAMES`, or the number as text), `packets`, `bytes`, `mean_bytes` (bytes per packet), the protocol
# with the most packets first, rows numbered from 0.
#
# **Hints**
# - `by_proto.lookup_or_try_init(&key, &zero)` returns a pointer to the entry (creating it from `zero`),
#   or NULL: check it. Add with `__sync_fetch_and_add(&s->packets, 1)` — several CPUs may count at once.
# - `TC_ACT_OK` lets a packet through, `TC_ACT_SHOT` drops it.
# - The length of a frame counts every header: 14 (Ethernet) + 20 (IPv4) + 8 (ICMP) + the ping's payload.
# At TC it is `skb->len`; at XDP it is `data_end - data`.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false} tags=["setup"]
from ebpf_lab.grading import check
import pandas as pd

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

BPF_HASH(by_proto, u32, struct proto_stats, 256);   /* IPv4 protocol number -> counts */

int on_tc_ingress(struct __sk_buff *skb)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(struct ethhdr);

    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return TC_ACT_OK;   /* not IPv4 (ARP, ...), or too short: let it through */

    // ### BEGIN SOLUTION
    u32 proto = ip->protocol;
    struct proto_stats zero = {};
    struct proto_stats *s = by_proto.lookup_or_try_init(&proto, &zero);

    if (s) {
        __sync_fetch_and_add(&s->packets, 1);
        __sync_fetch_and_add(&s->bytes, skb->len);
    }
    // ### END SOLUTION
    return TC_ACT_OK;
}
"""

# %% nbgrader={"grade": false, "grade_id": "answer-py", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["answer-py"]
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP"}

def protocol_table(stats):
    """stats: {protocol: {"packets": n, "bytes": b}} -> DataFrame protocol, packets, bytes, mean_bytes."""
    ### BEGIN SOLUTION
    rows = [(PROTO_NAMES.get(k, str(k)), v["packets"], v["bytes"], v["bytes"] / v["packets"]) for k, v in stats.items()]
    df = pd.DataFrame(rows, columns=["protocol", "packets", "bytes", "mean_bytes"])
    return df.sort_values(["packets", "protocol"], ascending=[False, True]).reset_index(drop=True)
    ### END SOLUTION


# %% [markdown]
# Try it on a small example:

# %% tags=["try"]
protocol_table({1: {"packets": 4, "bytes": 400}, 17: {"packets": 6, "bytes": 900}})

# %% [markdown]
# ## Check your answer
#
# Run the cell below. It builds a fresh lab network (two network namespaces and a veth pair — never
# your machine's interfaces), attaches your program on the receiver's side, sends real pings, UDP
# datagrams and a TCP connection across, compares what arrived with what should have, and removes the network. `.data` of
# the last report (with `.data`, what your code produced) is `ebpf_lab.classroom.last_report()`. From a terminal:
# `sudo ebpf-lab check tc-count-protocols notebooks/exercises/tc-count-protocols.ipynb`.

# %% nbgrader={"grade": true, "grade_id": "check-tc-count-protocols", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false} tags=["check-tc-count-protocols"]
"""Checks tc-count-protocols: PROGRAM loads at TC ingress of a lab network, lets every packet through, and
by_proto holds exactly the IPv4 packets and bytes per protocol that arrived; protocol_table() names, orders
and averages them."""
check("tc-count-protocols", globals())
