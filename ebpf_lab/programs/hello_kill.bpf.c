// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 01 — who sends kill? (动手 1): the kill syscall at entry and return.
 *
 * One body, two ways in, chosen with a -D flag (as libbpf-tools select with
 * #if; ebpf_lab/lessons/_syscall.py picks the flag and says which):
 *   -DHOOK_KPROBE      kprobe on the kill syscall's kernel function
 *                      (on_kill_entry) and a kretprobe on it (on_kill_return):
 *                      the tutorial's hook. The function's name comes from
 *                      bcc's get_syscall_fnname("kill"): __x64_sys_kill on
 *                      x86-64 since 4.17, __arm64_sys_kill on arm64, sys_kill
 *                      on older kernels. Needs kprobes (CONFIG_KPROBES).
 *   -DHOOK_TRACEPOINT  tracepoints syscalls:sys_enter_kill (on_kill_entry) and
 *                      syscalls:sys_exit_kill (on_kill_return), for kernels
 *                      without kprobes. Needs CONFIG_FTRACE_SYSCALLS.
 * Both fill the very same event. Needs BPF ring buffers (5.8+).
 *
 * Entry and return are two separate calls of two programs: the entry stores
 * the syscall's arguments in a hash keyed by thread id, the return finds
 * them there, adds the result and sends one event per kill() to user space.
 * No kernel struct layout is read: tracepoint arguments come from the
 * running kernel's tracefs format files, and struct pt_regs is the CPU's
 * register frame (an ABI), so both are right whatever headers compile this.
 *
 * Parameters (-D flags):
 *   ONLY_PID         0: every sender; else only kills sent by this process id (tgid)
 *   SYSCALL_WRAPPER  (kprobe only) 1 when the syscall function is a wrapper
 *                    (__x64_sys_*): its only argument is a struct pt_regs *
 *                    holding the user's registers, and kill's pid and sig are
 *                    in there. 0 for old kernels where sys_kill(pid, sig)
 *                    takes them directly.
 *
 * All variants live in this one file because bcc rewrites map calls
 * (inflight.update(...)) only in the file it compiles, not in included headers.
 */
#if !defined(HOOK_KPROBE) && !defined(HOOK_TRACEPOINT)
#error "choose the hook: compile with -DHOOK_KPROBE or -DHOOK_TRACEPOINT"
#endif
#include <uapi/linux/ptrace.h>

#ifndef ONLY_PID
#define ONLY_PID 0
#endif

struct kill_args {
	u64 ts_ns;       /* entry time, bpf_ktime_get_ns() */
	s32 target_pid;  /* kill(pid, ...): >0 a process, 0/-1/<-1 groups */
	s32 sig;         /* kill(..., sig): 0 only checks that the target exists */
};

struct kill_event {
	u64 ts_ns;       /* entry time: CLOCK_MONOTONIC nanoseconds */
	u64 latency_ns;  /* return time - entry time */
	s64 ret;         /* the syscall's result: 0 or -errno */
	u32 sender_pid;  /* process (tgid) that called kill() */
	u32 sender_tid;  /* its thread */
	s32 target_pid;
	s32 sig;
	char sender_comm[16];
};

#define RING_PAGES 64                               /* kills are rare */
BPF_HASH(inflight, u32, struct kill_args, 10240);  /* thread id -> arguments */
BPF_RINGBUF_OUTPUT(events, RING_PAGES);             /* the 2nd map: see below */
BPF_PERCPU_ARRAY(lost, u64, 1);                     /* events the ring had no room for */

#define EVENTS_MAP_POSITION 2
#include "lab_ring.h"                               /* wake_flags(): when to wake the collector */

static __always_inline int kill_entry(s32 target_pid, s32 sig)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct kill_args a = {};

	if (ONLY_PID && (id >> 32) != ONLY_PID)
		return 0;
	a.ts_ns = bpf_ktime_get_ns();
	a.target_pid = target_pid;
	a.sig = sig;
	inflight.update(&tid, &a);
	return 0;
}

static __always_inline int kill_return(s64 ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	int zero = 0;
	struct kill_args *a = inflight.lookup(&tid);

	if (!a)
		return 0;  /* entry not seen (attached mid-call, or filtered out) */
	struct kill_event *e = events.ringbuf_reserve(sizeof(struct kill_event));
	if (!e) {
		lost.increment(zero);
		inflight.delete(&tid);
		return 0;
	}
	e->ts_ns = a->ts_ns;
	e->latency_ns = bpf_ktime_get_ns() - a->ts_ns;
	e->ret = ret;
	e->sender_pid = id >> 32;
	e->sender_tid = tid;
	e->target_pid = a->target_pid;
	e->sig = a->sig;
	bpf_get_current_comm(&e->sender_comm, sizeof(e->sender_comm));
	events.ringbuf_submit(e, wake_flags(sizeof(*e)));
	inflight.delete(&tid);
	return 0;
}

#if defined(HOOK_KPROBE)
#ifndef SYSCALL_WRAPPER
#define SYSCALL_WRAPPER 1
#endif

int on_kill_entry(struct pt_regs *ctx)
{
	long pid = 0, sig = 0;
#if SYSCALL_WRAPPER
	/* __x64_sys_kill(const struct pt_regs *regs): the kprobe's ctx holds the
	 * wrapper's registers; the user's registers are behind its first argument. */
	struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
	bpf_probe_read_kernel(&pid, sizeof(pid), &PT_REGS_PARM1_SYSCALL(regs));
	bpf_probe_read_kernel(&sig, sizeof(sig), &PT_REGS_PARM2_SYSCALL(regs));
#else
	pid = PT_REGS_PARM1(ctx);
	sig = PT_REGS_PARM2(ctx);
#endif
	return kill_entry((s32)pid, (s32)sig);
}

int on_kill_return(struct pt_regs *ctx)
{
	/* The tutorial's int ret = PT_REGS_RC(ctx): the return value register. */
	return kill_return((s64)PT_REGS_RC(ctx));
}

#else /* HOOK_TRACEPOINT */

/* bcc builds struct tracepoint__syscalls__sys_enter_kill from
 * /sys/kernel/tracing/events/syscalls/sys_enter_kill/format:
 *   pid_t pid; int sig;   (each in an 8-byte slot) */
int on_kill_entry(struct tracepoint__syscalls__sys_enter_kill *args)
{
	return kill_entry((s32)args->pid, (s32)args->sig);
}

int on_kill_return(struct tracepoint__syscalls__sys_exit_kill *args)
{
	return kill_return(args->ret);
}
#endif

/* License: GPL (bcc's default). The kprobe variant needs it: bpf_probe_read_kernel()
 * is a GPL-only helper. The tracepoint variant uses none (bpf_get_current_comm()
 * and the ring buffer helpers are open to any program). */
