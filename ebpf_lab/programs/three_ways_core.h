/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Lesson 06 — the event three_ways_core.bpf.c sends and three_ways_loader.c
 * reads (libbpf-bootstrap keeps it in a header both sides include).
 */
#ifndef THREE_WAYS_CORE_H
#define THREE_WAYS_CORE_H

struct event {
	__u64 ts_ns;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC nanoseconds */
	__u32 sender_pid;  /* process (tgid) calling kill() */
	__u32 parent_pid;  /* task->real_parent->tgid, relocated by libbpf (CO-RE) */
	__s32 target_pid;  /* kill()'s pid argument */
	__s32 sig;         /* kill()'s signal argument */
	char sender_comm[16];
};

#endif
