// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 06 — one small tool, three ways: this is the bcc way.
 *
 * Hook: tracepoint syscalls:sys_enter_kill (on_kill_entry). The same hook
 * serves all three ways (bcc, bpftrace, libbpf CO-RE), so that they are
 * compared on equal terms, and it works on kernels without kprobes.
 * Needs: syscall tracepoints (CONFIG_FTRACE_SYSCALLS), BPF ring buffers (5.8+),
 * and kernel headers: bcc compiles this file with clang at run time against
 * the headers it finds for the running kernel (or the lab's fallback headers).
 *
 * For every kill() on the machine: the sender's pid and comm, the target and
 * the signal (tracepoint arguments: their layout comes from the running
 * kernel's tracefs format file, so they are always right), and the sender's
 * parent, read from the kernel's task_struct: task->real_parent->tgid.
 *
 * That last read is the lesson. bcc turns the pointer chain below into
 * bpf_probe_read_kernel() calls at offsets taken from the headers it compiled
 * against. If those headers are not the running kernel's, the offsets are
 * another kernel's and the value read is wrong, silently.
 */
#include <linux/sched.h>

struct event {
	u64 ts_ns;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC nanoseconds */
	u32 sender_pid;  /* process (tgid) calling kill() */
	u32 parent_pid;  /* task->real_parent->tgid, at the headers' offsets */
	s32 target_pid;  /* kill()'s pid argument */
	s32 sig;         /* kill()'s signal argument */
	char sender_comm[16];
};

#define RING_PAGES 64                /* kills are rare */
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
BPF_PERCPU_ARRAY(lost, u64, 1);      /* events the ring had no room for */

#define EVENTS_MAP_POSITION 1
#include "lab_ring.h"                /* wake_flags(): when to wake the collector */

int on_kill_entry(struct tracepoint__syscalls__sys_enter_kill *args)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	int zero = 0;
	struct event *e = events.ringbuf_reserve(sizeof(struct event));

	if (!e) {
		lost.increment(zero);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->sender_pid = bpf_get_current_pid_tgid() >> 32;
	e->parent_pid = task->real_parent->tgid;  /* bcc rewrites this into probe reads */
	e->target_pid = (s32)args->pid;
	e->sig = (s32)args->sig;
	bpf_get_current_comm(&e->sender_comm, sizeof(e->sender_comm));
	events.ringbuf_submit(e, wake_flags(sizeof(*e)));
	return 0;
}

/* License: GPL (bcc loads its programs as GPL), needed for bpf_get_current_task() and
 * the bpf_probe_read_kernel() calls bcc makes of task->real_parent->tgid: both GPL-only. */
