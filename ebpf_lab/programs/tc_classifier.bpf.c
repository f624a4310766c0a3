// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 04 — the tutorial's TC classifier, as printed (网络 / 实例).
 * Hook: TC clsact ingress (BPF_PROG_TYPE_SCHED_CLS, direct-action), section "test".
 * Drops IPv4 packets whose skb->len >= 500; passes everything else.
 * Built with the tutorial's own pipeline (no bcc):
 *   clang -O2 -emit-llvm -c tc_classifier.bpf.c -o - | llc -march=bpf -mcpu=probe -filetype=obj -o tc_classifier.o
 * Note: process_packet() is called before it is declared. clang 14 warns;
 * clang 16 and newer refuse implicit declarations. The lesson composes the
 * one-line fix from this file (ebpf_lab.lessons.tc_classifier.fixed_source()).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/swab.h>

#define SEC(NAME) __attribute__((section(NAME), used))
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
