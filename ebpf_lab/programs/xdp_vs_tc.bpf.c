// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 05 — XDP vs TC vs iptables: one drop rule, two BPF hooks.
 *
 * Hooks: XDP (on_xdp; generic/skb mode or native on veth, Linux 4.8+/4.19+
 * for veth) and TC clsact ingress (on_tc_ingress, SCHED_CLS direct-action).
 * Both run the same rule, rule_drops(): an IPv4 UDP datagram to port PORT is
 * dropped — exactly what `iptables -p udp --dport PORT -j DROP` matches.
 *
 * Parameters (-D flags):
 *   PORT   UDP destination port whose datagrams are dropped (the lesson's 9, "discard")
 *
 * Maps:
 *   verdicts  per-CPU counters: 0 dropped, 1 passed
 *   shapes    per-CPU, per hook (0 XDP, 1 TC): what the program saw of the
 *             flow's frames as it was entered — how many, how many with part
 *             of the frame outside the directly readable (linear) area, and
 *             the bytes of whole frames and of their linear parts
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/udp.h>
#include <uapi/linux/pkt_cls.h>

#ifndef PORT
#define PORT 9
#endif

/* Ethernet + IPv4 (no options) + UDP: what rule_drops() reads */
#define HDR_BYTES (14 + 20 + 8)

BPF_PERCPU_ARRAY(verdicts, u64, 2);

struct shape {
    u64 frames;        /* the flow's frames (those the rule drops) */
    u64 nonlinear;     /* of them: whole frame longer than its linear part */
    u64 frame_bytes;   /* sum of whole-frame lengths */
    u64 linear_bytes;  /* sum of linear parts, data_end - data on entry */
};
BPF_PERCPU_ARRAY(shapes, struct shape, 2);

static __always_inline void note_shape(u32 hook, u64 whole, u64 linear)
{
    struct shape *s = shapes.lookup(&hook);
    if (s) {
        s->frames += 1;
        s->nonlinear += whole > linear;
        s->frame_bytes += whole;
        s->linear_bytes += linear;
    }
}

static __always_inline void count(u32 slot)
{
    u64 *v = verdicts.lookup(&slot);
    if (v)
        *v += 1;  /* per-CPU: no atomic needed */
}

/* 1 when the frame [data, data_end) is an IPv4 UDP datagram to PORT. */
static __always_inline int rule_drops(void *data, void *data_end)
{
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return 0;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl < 5)
        return 0;
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > data_end)
        return 0;
    return udp->dest == bpf_htons(PORT);
}

int on_xdp(struct xdp_md *ctx)
{
    void *data_end = (void *)(long)ctx->data_end;
    void *data = (void *)(long)ctx->data;
    if (rule_drops(data, data_end)) {
        /* the whole frame, by its own IP header; an XDP program without
         * frags support is given data_end - data and no more: its linear part */
        struct iphdr *ip = data + sizeof(struct ethhdr);
        if ((void *)(ip + 1) <= data_end)
            note_shape(0, sizeof(struct ethhdr) + bpf_ntohs(ip->tot_len), data_end - data);
        count(0);
        return XDP_DROP;
    }
    count(1);
    return XDP_PASS;
}

int on_tc_ingress(struct __sk_buff *skb)
{
    /* An sk_buff may keep most of the frame in page fragments (a packet
     * socket's TX ring puts only the link-layer header in the linear part),
     * and direct packet access sees the linear part only. Pull the headers
     * the rule reads into it first. XDP programs without frags support (like
     * on_xdp) do not meet this: generic XDP, and native XDP on veth, copy
     * such an sk_buff into one linear buffer before running them. The shapes
     * map counts, frame by frame, what each hook was given. */
    u64 linear = (long)skb->data_end - (long)skb->data;  /* before any pull */
    if ((long)skb->data + HDR_BYTES > (long)skb->data_end)
        bpf_skb_pull_data(skb, HDR_BYTES);
    void *data_end = (void *)(long)skb->data_end;
    void *data = (void *)(long)skb->data;
    if (rule_drops(data, data_end)) {
        note_shape(1, skb->len, linear);  /* skb->len: the whole frame, fragments included */
        count(0);
        return TC_ACT_SHOT;
    }
    count(1);
    return TC_ACT_OK;
}

/* License: GPL (bcc passes it to the kernel for us). */
