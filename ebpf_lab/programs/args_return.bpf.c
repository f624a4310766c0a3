// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03 — arguments and return values (进阶用法), tracepoint variant.
 *
 * Hooks: tracepoint syscalls:sys_enter_openat (on_openat_entry) and
 * tracepoint syscalls:sys_exit_openat (on_openat_return). The lab uses them
 * where the kernel has neither kprobes nor working fentry/fexit; they see the
 * same arguments and the same result as args_return_kprobe.bpf.c, and fill
 * the same event.
 * Needs: syscall tracepoints (CONFIG_FTRACE_SYSCALLS), BPF ring buffers (5.8+).
 *
 * The arguments come from the running kernel's tracefs format files
 * (events/syscalls/sys_enter_openat/format), never from kernel struct
 * layouts, so they are right whatever headers compile this file.
 *
 * Parameters (-D flags):
 *   ONLY_PID  0: every process; else only this process id (tgid)
 */
#ifndef ONLY_PID
#define ONLY_PID 0
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

/* License: GPL, needed for bpf_probe_read_user_str() and friends. */
