// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03 — arguments and return values (进阶用法): the tutorial's
 * technique on a function that fires all the time, openat().
 *
 * One body, three ways in, chosen with a -D flag (as libbpf-tools select
 * with #if; ebpf_lab/lessons/_syscall.py picks the best this kernel takes,
 * in this order, and says which):
 *   -DHOOK_KPROBE      kprobe on the openat syscall's kernel function
 *                      (on_openat_entry) and a kretprobe on it
 *                      (on_openat_return); the name comes from bcc's
 *                      get_syscall_fnname("openat") (__x64_sys_openat on
 *                      x86-64). Needs kprobes (CONFIG_KPROBES).
 *   -DHOOK_FEXIT       fentry (KFUNC_PROBE) and fexit (KRETFUNC_PROBE) on the
 *                      same function, OPENAT_FN. BPF trampolines call the
 *                      program directly, with the function's arguments typed
 *                      from the kernel's BTF; an fexit program sees the
 *                      arguments and the return value together. Needs BTF and
 *                      a kernel that accepts BPF_PROG_TYPE_TRACING programs:
 *                      the lab only picks it after loading it for real, since
 *                      some kernels advertise fentry and refuse it.
 *   -DHOOK_TRACEPOINT  tracepoints syscalls:sys_enter_openat (on_openat_entry)
 *                      and syscalls:sys_exit_openat (on_openat_return), where
 *                      the kernel has neither. Needs CONFIG_FTRACE_SYSCALLS.
 * All three fill the same event. Needs BPF ring buffers (5.8+).
 *
 * The entry reads the arguments (dfd, filename, flags, mode) and stores them
 * with the entry time in a hash keyed by thread id; the return takes them
 * out, adds the result (a file descriptor, or -errno) and the time spent in
 * the call, and sends one event per call. No kernel struct layout is read:
 * tracepoint arguments come from the running kernel's tracefs format files
 * (events/syscalls/sys_enter_openat/format), and struct pt_regs is the CPU's
 * register frame (an ABI), so both are right whatever headers compile this.
 *
 * Parameters (-D flags):
 *   ONLY_PID         0: every process; else only this process id (tgid)
 *   SYSCALL_WRAPPER  (kprobe, fexit) 1 when the syscall function takes a
 *                    struct pt_regs * holding the user's registers (x86-64
 *                    4.17+, arm64 4.19+): the arguments are read from there.
 *                    0 for kernels where sys_openat(dfd, filename, flags,
 *                    mode) takes them directly, as the tutorial's typed
 *                    arguments.
 *   OPENAT_FN        (fexit) the kernel function, e.g. __x64_sys_openat
 *
 * All variants live in this one file because bcc rewrites map calls
 * (inflight.update(...)) only in the file it compiles, not in included headers.
 */
#if !defined(HOOK_KPROBE) && !defined(HOOK_FEXIT) && !defined(HOOK_TRACEPOINT)
#error "choose the hook: compile with -DHOOK_KPROBE, -DHOOK_FEXIT or -DHOOK_TRACEPOINT"
#endif
#include <uapi/linux/ptrace.h>

#ifndef ONLY_PID
#define ONLY_PID 0
#endif
#ifndef SYSCALL_WRAPPER
#define SYSCALL_WRAPPER 1
#endif
#define NAME_LEN 256

struct open_args {
	u64 ts_ns;
	s32 dfd;
	s32 flags;
	u32 mode;
	u32 _pad;
	char filename[NAME_LEN];
};

struct open_event {
	u64 ts_ns;        /* entry: CLOCK_MONOTONIC nanoseconds */
	u64 latency_ns;   /* return - entry */
	s64 ret;          /* fd >= 0, or -errno */
	u32 pid;          /* process (tgid) */
	u32 tid;          /* thread */
	s32 dfd;          /* directory fd the path is relative to (AT_FDCWD = -100) */
	s32 flags;        /* O_* flags */
	u32 mode;         /* permissions for O_CREAT */
	u32 _pad;
	char comm[16];
	char filename[NAME_LEN];
};

#define RING_PAGES 1024                              /* 4 MiB */
BPF_HASH(inflight, u32, struct open_args, 10240);   /* thread id -> arguments */
BPF_RINGBUF_OUTPUT(events, RING_PAGES);              /* the 2nd map: see below */
BPF_PERCPU_ARRAY(lost, u64, 1);                      /* events the ring had no room for */

#define EVENTS_MAP_POSITION 2
#include "lab_ring.h"                                /* wake_flags(): when to wake the collector */

static __always_inline int open_entry(s32 dfd, const char *filename, s32 flags, u32 mode)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct open_args a = {};

	if (ONLY_PID && (id >> 32) != ONLY_PID)
		return 0;
	a.ts_ns = bpf_ktime_get_ns();
	a.dfd = dfd;
	a.flags = flags;
	a.mode = mode;
	bpf_probe_read_user_str(a.filename, sizeof(a.filename), filename);
	inflight.update(&tid, &a);
	return 0;
}

static __always_inline int open_return(s64 ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	int zero = 0;
	struct open_args *a = inflight.lookup(&tid);

	if (!a)
		return 0;
	struct open_event *e = events.ringbuf_reserve(sizeof(struct open_event));
	if (!e) {
		lost.increment(zero);
		inflight.delete(&tid);
		return 0;
	}
	e->ts_ns = a->ts_ns;
	e->latency_ns = bpf_ktime_get_ns() - a->ts_ns;
	e->ret = ret;
	e->pid = id >> 32;
	e->tid = tid;
	e->dfd = a->dfd;
	e->flags = a->flags;
	e->mode = a->mode;
	e->_pad = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_kernel(&e->filename, sizeof(e->filename), a->filename);
	events.ringbuf_submit(e, wake_flags(sizeof(*e)));
	inflight.delete(&tid);
	return 0;
}

#if defined(HOOK_KPROBE) || defined(HOOK_FEXIT)
/* A syscall wrapper such as __x64_sys_openat(const struct pt_regs *regs) gets
 * the user's registers as saved at the syscall: the arguments are in there. */
static __always_inline int open_entry_regs(const struct pt_regs *regs)
{
	long dfd = 0, filename = 0, flags = 0, mode = 0;

	bpf_probe_read_kernel(&dfd, sizeof(dfd), &PT_REGS_PARM1_SYSCALL(regs));
	bpf_probe_read_kernel(&filename, sizeof(filename), &PT_REGS_PARM2_SYSCALL(regs));
	bpf_probe_read_kernel(&flags, sizeof(flags), &PT_REGS_PARM3_SYSCALL(regs));
	/* The 4th syscall argument travels in r10 on x86-64, not rcx (the syscall
	 * instruction clobbers rcx): bcc's PT_REGS_PARM4_SYSCALL knows. */
	bpf_probe_read_kernel(&mode, sizeof(mode), &PT_REGS_PARM4_SYSCALL(regs));
	return open_entry((s32)dfd, (const char *)filename, (s32)flags, (u32)mode);
}
#endif

#if defined(HOOK_KPROBE)

int on_openat_entry(struct pt_regs *ctx)
{
#if SYSCALL_WRAPPER
	/* the kprobe's ctx holds the wrapper's registers; its first argument
	 * points at the user's */
	return open_entry_regs((const struct pt_regs *)PT_REGS_PARM1(ctx));
#else
	/* sys_openat(dfd, filename, flags, mode) takes the arguments directly */
	return open_entry((s32)PT_REGS_PARM1(ctx), (const char *)PT_REGS_PARM2(ctx),
			  (s32)PT_REGS_PARM3(ctx), (u32)PT_REGS_PARM4(ctx));
#endif
}

int on_openat_return(struct pt_regs *ctx)
{
	return open_return((s64)PT_REGS_RC(ctx));
}

#elif defined(HOOK_FEXIT)

#ifndef OPENAT_FN
#define OPENAT_FN __x64_sys_openat
#endif
/* KFUNC_PROBE(fn, ...) pastes fn into the program's name (kfunc__fn), which
 * stops the preprocessor from expanding OPENAT_FN; one more macro level
 * expands it first. */
#define LAB_KFUNC_PROBE(fn, args...) KFUNC_PROBE(fn, ##args)
#define LAB_KRETFUNC_PROBE(fn, args...) KRETFUNC_PROBE(fn, ##args)

#if SYSCALL_WRAPPER
LAB_KFUNC_PROBE(OPENAT_FN, struct pt_regs *regs)
{
	return open_entry_regs(regs);
}

LAB_KRETFUNC_PROBE(OPENAT_FN, struct pt_regs *regs, long ret)
{
	return open_return(ret);
}
#else
LAB_KFUNC_PROBE(OPENAT_FN, int dfd, const char *filename, int flags, unsigned short mode)
{
	return open_entry(dfd, filename, flags, mode);
}

LAB_KRETFUNC_PROBE(OPENAT_FN, int dfd, const char *filename, int flags, unsigned short mode, long ret)
{
	return open_return(ret);
}
#endif

#else /* HOOK_TRACEPOINT */

/* struct tracepoint__syscalls__sys_enter_openat, built by bcc from the
 * format file: int dfd; const char *filename; int flags; umode_t mode. */
int on_openat_entry(struct tracepoint__syscalls__sys_enter_openat *args)
{
	return open_entry((s32)args->dfd, args->filename, (s32)args->flags, (u32)args->mode);
}

int on_openat_return(struct tracepoint__syscalls__sys_exit_openat *args)
{
	return open_return(args->ret);
}
#endif

/* License: GPL (bcc's default), needed for bpf_probe_read_user_str() and
 * bpf_probe_read_kernel(), which are GPL-only helpers. */
