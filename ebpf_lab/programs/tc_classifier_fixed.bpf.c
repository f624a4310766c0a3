// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 04 — the tutorial's TC classifier with the one fix newer compilers need.
 * Hook: TC clsact ingress (BPF_PROG_TYPE_SCHED_CLS, direct-action), section "test".
 * The only change from tc_classifier.bpf.c: process_packet() is declared
 * before classifier() calls it. C99 removed implicit function declarations;
 * clang 16+ makes calling an undeclared function an error, not a warning.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/swab.h>

#define SEC(NAME) __attribute__((section(NAME), used))

int process_packet(struct __sk_buff *skb);  // the fix: declare before use

SEC("test")  //表示一个代码段
int classifier(struct __sk_buff *skb)
{
    void *data_end = (void *)(unsigned long long)skb->data_end;
    void *data = (void *)(unsigned long long)skb->data;
    struct ethhdr *eth = data;  //用于安全检测,如果不加上这些代码,则无法通过bpf验证器。

    if (data + sizeof(struct ethhdr) > data_end)
        return TC_ACT_SHOT; 

    if (eth->h_proto == ___constant_swab16(ETH_P_IP))  //判断是否为ip包
        return process_packet(skb);
    else
        return TC_ACT_OK;
}
// 数据包处理流程
int process_packet(struct __sk_buff *skb){
    unsigned int len = 500; 
    if (skb->len >= len) //内核协议栈
        return TC_ACT_SHOT;
    else
        return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";  //必需要有
