// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 04 — the tutorial's TC classifier, loaded through bcc.
 *
 * Hook: TC clsact ingress (BPF_PROG_TYPE_SCHED_CLS, direct-action), handler
 * on_tc_ingress. Needs: cls_bpf and the clsact qdisc (Linux 4.5+).
 * Same rule as tc_classifier.bpf.c: an IPv4 packet whose skb->len is at or
 * above LIMIT is dropped (TC_ACT_SHOT), anything else passes (TC_ACT_OK).
 * At TC ingress skb->len counts the whole frame from the Ethernet header on:
 * 14 (Ethernet) + 20 (IPv4) + 8 (ICMP) + the ping payload.
 *
 * Parameters (-D flags):
 *   LIMIT   drop IPv4 packets with skb->len >= LIMIT (the tutorial's 500)
 *   BOUNDS_CHECK  1 (default): check data + sizeof(struct ethhdr) <= data_end
 *           before reading eth->h_proto, as the tutorial does. 0 leaves the
 *           check out, to see the verifier refuse the program: packet data
 *           may only be read after such a check, context fields (skb->len)
 *           need none.
 *
 * Maps:
 *   by_len  skb->len of each IPv4 packet -> how many passed, how many dropped
 *   totals  0: IPv4 passed, 1: IPv4 dropped, 2: not IPv4 (passed), 3: shorter
 *           than an Ethernet header (dropped, as the tutorial does)
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/pkt_cls.h>

#ifndef LIMIT
#define LIMIT 500
#endif
#if LIMIT < 1
#error "LIMIT must be a positive number of bytes"
#endif
#ifndef BOUNDS_CHECK
#define BOUNDS_CHECK 1
#endif

struct verdicts {
    u64 pass;
    u64 drop;
};

BPF_HASH(by_len, u32, struct verdicts, 16384);
BPF_ARRAY(totals, u64, 4);

static __always_inline void count(u32 slot)
{
    u64 *v = totals.lookup(&slot);
    if (v)
        __sync_fetch_and_add(v, 1);
}

/* Declared before use: the fix clang 16+ needs (see tc_classifier_fixed.bpf.c). */
static __always_inline int process_packet(struct __sk_buff *skb)
{
    u32 len = skb->len;
    struct verdicts zero = {};
    struct verdicts *v = by_len.lookup_or_try_init(&len, &zero);

    if (len >= LIMIT) {
        if (v)
            __sync_fetch_and_add(&v->drop, 1);
        count(1);
        return TC_ACT_SHOT;
    }
    if (v)
        __sync_fetch_and_add(&v->pass, 1);
    count(0);
    return TC_ACT_OK;
}

int on_tc_ingress(struct __sk_buff *skb)
{
    void *data_end = (void *)(unsigned long long)skb->data_end;
    void *data = (void *)(unsigned long long)skb->data;
    struct ethhdr *eth = data;

#if BOUNDS_CHECK  /* the tutorial: 不加上这些代码,则无法通过bpf验证器 (without it, no verifier pass) */
    if (data + sizeof(struct ethhdr) > data_end) {
        count(3);
        return TC_ACT_SHOT;
    }
#endif
    if (eth->h_proto == bpf_htons(ETH_P_IP))
        return process_packet(skb);
    count(2);
    return TC_ACT_OK;
}

/* License: GPL (bcc passes it to the kernel for us). */
