// SPDX-License-Identifier: GPL-2.0
/*
 * Grader's truth for the lesson-03 exercises (openat-failures, openat-latency).
 *
 * Hooks: tracepoints syscalls:sys_enter_openat (on_enter) and
 * syscalls:sys_exit_openat (on_exit), attached next to the learner's program,
 * whichever hook the learner's program is graded on. Needs: BPF tracepoint
 * programs, syscall tracepoints (CONFIG_FTRACE_SYSCALLS), hash maps.
 *
 * Parameters (-D flags): TARGET_PID, the workload process.
 */
BPF_HASH(results, s64, u64, 256);     /* 0 for success, else -errno -> calls */
BPF_HASH(since, u32, u64, 1024);      /* thread -> entry time */
BPF_HISTOGRAM(latency, int, 64);      /* bpf_log2l(ns) -> calls */

int on_enter(struct tracepoint__syscalls__sys_enter_openat *args)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u64 ts = bpf_ktime_get_ns();

	if ((id >> 32) != TARGET_PID)
		return 0;
	since.update(&tid, &ts);
	return 0;
}

int on_exit(struct tracepoint__syscalls__sys_exit_openat *args)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	s64 key = args->ret < 0 ? args->ret : 0;
	u64 *ts;

	if ((id >> 32) != TARGET_PID)
		return 0;
	results.increment(key);
	ts = since.lookup(&tid);
	if (ts) {
		latency.increment(bpf_log2l(bpf_ktime_get_ns() - *ts));
		since.delete(&tid);
	}
	return 0;
}

/* License: GPL (bpf_get_current_pid_tgid). */
