// SPDX-License-Identifier: GPL-2.0
/*
 * Grader's counter for the choose-the-hook exercise (lesson 01).
 *
 * Hook: whatever tracepoint the learner named (on_hook), attached by the grader.
 * Needs: BPF tracepoint programs, array maps.
 * Counts how often the hook fires in the workload process TARGET_PID (-D flag):
 * the right tracepoint fires exactly once per call the question is about.
 */
BPF_ARRAY(fired, u64, 1);

int on_hook(void *ctx)
{
	u32 zero = 0;
	u64 *n;

	if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID)
		return 0;
	n = fired.lookup(&zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* License: GPL (bpf_get_current_pid_tgid). */
