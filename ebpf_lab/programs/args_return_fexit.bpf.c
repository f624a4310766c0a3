// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03 — arguments and return values (进阶用法), fentry/fexit variant.
 *
 * Hooks: fentry (KFUNC_PROBE) and fexit (KRETFUNC_PROBE) on the openat
 * syscall's kernel function, OPENAT_FN (bcc's get_syscall_fnname("openat"),
 * e.g. __x64_sys_openat). BPF trampolines call the program directly, with
 * the function's arguments typed from the kernel's BTF; an fexit program sees
 * the arguments and the return value together.
 * Needs: BTF (/sys/kernel/btf/vmlinux) and a kernel that accepts
 * BPF_PROG_TYPE_TRACING programs; the lab only picks this variant after
 * loading it for real, since some kernels advertise fentry and refuse it.
 *
 * Parameters (-D flags):
 *   ONLY_PID         0: every process; else only this process id (tgid)
 *   OPENAT_FN        the kernel function, e.g. __x64_sys_openat
 *   SYSCALL_WRAPPER  1 when OPENAT_FN takes a struct pt_regs * holding the
 *                    user's registers (x86-64 4.17+); 0 when it takes
 *                    (dfd, filename, flags, mode) directly
 *
 * struct pt_regs is the CPU's register frame (an ABI), so its layout does
 * not depend on which kernel's headers compile this file.
 */
#include <uapi/linux/ptrace.h>

#ifndef ONLY_PID
#define ONLY_PID 0
#endif
#ifndef SYSCALL_WRAPPER
#define SYSCALL_WRAPPER 1
#endif
#ifndef OPENAT_FN
#define OPENAT_FN __x64_sys_openat
#endif
#define NAME_LEN 256

/* KFUNC_PROBE(fn, ...) pastes fn into the program's name (kfunc__fn), which
 * stops the preprocessor from expanding OPENAT_FN; one more macro level
 * expands it first. */
#define LAB_KFUNC_PROBE(fn, args...) KFUNC_PROBE(fn, ##args)
#define LAB_KRETFUNC_PROBE(fn, args...) KRETFUNC_PROBE(fn, ##args)

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

#if SYSCALL_WRAPPER
LAB_KFUNC_PROBE(OPENAT_FN, struct pt_regs *regs)
{
	long dfd = 0, filename = 0, flags = 0, mode = 0;

	bpf_probe_read_kernel(&dfd, sizeof(dfd), &PT_REGS_PARM1_SYSCALL(regs));
	bpf_probe_read_kernel(&filename, sizeof(filename), &PT_REGS_PARM2_SYSCALL(regs));
	bpf_probe_read_kernel(&flags, sizeof(flags), &PT_REGS_PARM3_SYSCALL(regs));
	bpf_probe_read_kernel(&mode, sizeof(mode), &PT_REGS_PARM4_SYSCALL(regs));
	return open_entry((s32)dfd, (const char *)filename, (s32)flags, (u32)mode);
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

/* License: GPL, needed for bpf_probe_read_user_str() and friends. */
