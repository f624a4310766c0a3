// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03 — arguments and return values (进阶用法), kprobe variant: the
 * tutorial's technique on a function that fires all the time, openat().
 *
 * Hooks: kprobe on the openat syscall's kernel function (on_openat_entry)
 * and a kretprobe on it (on_openat_return); the name comes from bcc's
 * get_syscall_fnname("openat") (__x64_sys_openat on x86-64).
 * Needs: kprobes (CONFIG_KPROBES), BPF ring buffers (5.8+).
 *
 * The entry reads the arguments (dfd, filename, flags, mode) and stores them
 * with the entry time in a hash keyed by thread id; the return takes them
 * out, adds PT_REGS_RC(ctx) (a file descriptor, or -errno) and the time spent
 * in the call, and sends one event per call.
 *
 * Parameters (-D flags):
 *   ONLY_PID         0: every process; else only this process id (tgid)
 *   SYSCALL_WRAPPER  1 when the syscall function takes a struct pt_regs *
 *                    holding the user's registers (x86-64 4.17+, arm64
 *                    4.19+): the arguments are read from there. 0 for
 *                    kernels where sys_openat(dfd, filename, flags, mode)
 *                    takes them directly, as the tutorial's typed arguments.
 *
 * struct pt_regs is the CPU's register frame, an ABI: its layout does not
 * change with the kernel version, unlike the kernel's internal structs.
 */
#include <uapi/linux/ptrace.h>

#ifndef ONLY_PID
#define ONLY_PID 0
#endif
#ifndef SYSCALL_WRAPPER
#define SYSCALL_WRAPPER 1
#endif
#define NAME_LEN 256

/* ---- the same in every variant of this lesson (bcc rewrites map calls only
 * ---- in the file it compiles, so each variant carries its own copy) ---- */
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

BPF_HASH(inflight, u32, struct open_args, 10240);   /* thread id -> arguments */
BPF_RINGBUF_OUTPUT(events, 1 << 10);                 /* 1024 pages = 4 MiB */
BPF_PERCPU_ARRAY(lost, u64, 1);                      /* events the ring had no room for */

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
	events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	inflight.delete(&tid);
	return 0;
}
/* ---- end of the common part ---- */

int on_openat_entry(struct pt_regs *ctx)
{
	long dfd = 0, filename = 0, flags = 0, mode = 0;
#if SYSCALL_WRAPPER
	/* __x64_sys_openat(const struct pt_regs *regs): the user's registers. */
	struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
	bpf_probe_read_kernel(&dfd, sizeof(dfd), &PT_REGS_PARM1_SYSCALL(regs));
	bpf_probe_read_kernel(&filename, sizeof(filename), &PT_REGS_PARM2_SYSCALL(regs));
	bpf_probe_read_kernel(&flags, sizeof(flags), &PT_REGS_PARM3_SYSCALL(regs));
	/* The 4th syscall argument travels in r10 on x86-64, not rcx (the syscall
	 * instruction clobbers rcx): bcc's PT_REGS_PARM4_SYSCALL knows. */
	bpf_probe_read_kernel(&mode, sizeof(mode), &PT_REGS_PARM4_SYSCALL(regs));
#else
	dfd = PT_REGS_PARM1(ctx);
	filename = PT_REGS_PARM2(ctx);
	flags = PT_REGS_PARM3(ctx);
	mode = PT_REGS_PARM4(ctx);
#endif
	return open_entry((s32)dfd, (const char *)filename, (s32)flags, (u32)mode);
}

int on_openat_return(struct pt_regs *ctx)
{
	return open_return((s64)PT_REGS_RC(ctx));
}

/* License: GPL, needed for bpf_probe_read_user_str() and friends. */
