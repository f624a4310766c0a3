// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 01 — who sends kill? (动手 1), tracepoint variant.
 *
 * Hooks: tracepoint syscalls:sys_enter_kill (on_kill_entry) and
 * tracepoint syscalls:sys_exit_kill (on_kill_return). Used where the kernel
 * has no kprobes; hello_kill_kprobe.bpf.c is the kprobe/kretprobe version and
 * fills the very same event.
 * Needs: syscall tracepoints (CONFIG_FTRACE_SYSCALLS), BPF ring buffers (5.8+).
 *
 * Entry and return are two separate calls of two programs: the entry stores
 * the syscall's arguments in a hash keyed by thread id, the return finds
 * them there, adds the result and sends one event per kill() to user space.
 * The arguments come from the running kernel's tracefs format files, never
 * from kernel struct layouts, so they are right whatever headers compile it.
 *
 * Parameters (-D flags):
 *   ONLY_PID  0: every sender; else only kills sent by this process id (tgid)
 */
/*
 * The event, the per-thread store joining entry and return, and the ring
 * buffer are the same in hello_kill.bpf.c and hello_kill_kprobe.bpf.c: bcc
 * rewrites map calls (inflight.update(...)) only in the file it compiles,
 * not in included headers, so each variant carries its own copy.
 */
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

BPF_HASH(inflight, u32, struct kill_args, 10240);  /* thread id -> arguments */
BPF_RINGBUF_OUTPUT(events, 1 << 6);                 /* 64 pages: kills are rare */
BPF_PERCPU_ARRAY(lost, u64, 1);                     /* events the ring had no room for */

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
	events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	inflight.delete(&tid);
	return 0;
}

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

/* License: GPL, needed for bpf_get_current_comm() and friends. */
