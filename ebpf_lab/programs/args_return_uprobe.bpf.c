// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03 — arguments and return values in user space: uprobes (the
 * tutorial: "uprobes 与kprobe类似,但是用于用户态程序插桩").
 *
 * Hooks:
 *   uprobe / uretprobe on libc's strtol(const char *nptr, char **endptr, int base)
 *       (on_strtol_entry, on_strtol_return)
 *   uprobe / uretprobe on ebl_collatz(const char *label, long n), a function
 *       of the small program ebpf_lab/workloads/argsret_target.c that the lab
 *       builds (on_collatz_entry, on_collatz_return)
 * Needs: uprobes (CONFIG_UPROBE_EVENTS), BPF ring buffers (5.8+).
 *
 * As in the tutorial's kprobe example, the typed arguments after
 * struct pt_regs *ctx are the probed function's own: bcc turns them into
 * reads of the argument registers. PT_REGS_RC(ctx) is the return value.
 * Strings live in the traced process's memory: bpf_probe_read_user_str().
 *
 * Parameters (-D flags):
 *   ONLY_PID  0: every process; else only this process id (tgid)
 */
#include <uapi/linux/ptrace.h>

#ifndef ONLY_PID
#define ONLY_PID 0
#endif
#define TEXT_LEN 64
#define FN_STRTOL 0
#define FN_COLLATZ 1

struct call_key {
	u32 tid;
	u32 fn;
};

struct call_args {
	u64 ts_ns;
	s64 int_arg;
	char text[TEXT_LEN];
};

struct call_event {
	u64 ts_ns;        /* entry: CLOCK_MONOTONIC nanoseconds */
	u64 latency_ns;   /* return - entry */
	s64 ret;          /* the function's return value */
	s64 int_arg;      /* strtol: base; ebl_collatz: n */
	u32 pid;
	u32 tid;
	u32 fn;           /* FN_STRTOL or FN_COLLATZ */
	u32 _pad;
	char comm[16];
	char text[TEXT_LEN];  /* strtol: nptr; ebl_collatz: label */
};

#define RING_PAGES 256               /* 1 MiB */
BPF_HASH(inflight, struct call_key, struct call_args, 10240);
BPF_RINGBUF_OUTPUT(events, RING_PAGES);   /* the 2nd map: see below */
BPF_PERCPU_ARRAY(lost, u64, 1);

#define EVENTS_MAP_POSITION 2
#include "lab_ring.h"                /* wake_flags(): when to wake the collector */

static __always_inline int call_entry(u32 fn, const char *text, s64 int_arg)
{
	u64 id = bpf_get_current_pid_tgid();
	struct call_key k = {.tid = (u32)id, .fn = fn};
	struct call_args a = {};

	if (ONLY_PID && (id >> 32) != ONLY_PID)
		return 0;
	a.ts_ns = bpf_ktime_get_ns();
	a.int_arg = int_arg;
	bpf_probe_read_user_str(a.text, sizeof(a.text), text);
	inflight.update(&k, &a);
	return 0;
}

static __always_inline int call_return(u32 fn, s64 ret)
{
	u64 id = bpf_get_current_pid_tgid();
	struct call_key k = {.tid = (u32)id, .fn = fn};
	int zero = 0;
	struct call_args *a = inflight.lookup(&k);

	if (!a)
		return 0;
	struct call_event *e = events.ringbuf_reserve(sizeof(struct call_event));
	if (!e) {
		lost.increment(zero);
		inflight.delete(&k);
		return 0;
	}
	e->ts_ns = a->ts_ns;
	e->latency_ns = bpf_ktime_get_ns() - a->ts_ns;
	e->ret = ret;
	e->int_arg = a->int_arg;
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->fn = fn;
	e->_pad = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_kernel(&e->text, sizeof(e->text), a->text);
	events.ringbuf_submit(e, wake_flags(sizeof(*e)));
	inflight.delete(&k);
	return 0;
}

int on_strtol_entry(struct pt_regs *ctx, const char *nptr, char **endptr, int base)
{
	return call_entry(FN_STRTOL, nptr, base);
}

int on_strtol_return(struct pt_regs *ctx)
{
	return call_return(FN_STRTOL, (s64)PT_REGS_RC(ctx));
}

int on_collatz_entry(struct pt_regs *ctx, const char *label, long n)
{
	return call_entry(FN_COLLATZ, label, n);
}

int on_collatz_return(struct pt_regs *ctx)
{
	return call_return(FN_COLLATZ, (s64)PT_REGS_RC(ctx));
}

/* License: GPL (bcc's default), needed for bpf_probe_read_user_str() and
 * bpf_probe_read_kernel(), which are GPL-only helpers. */
