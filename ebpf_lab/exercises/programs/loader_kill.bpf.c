// SPDX-License-Identifier: GPL-2.0
/*
 * Given program of the write-the-loader exercise (lesson 01).
 *
 * Hook: tracepoint syscalls:sys_enter_kill (on_kill). Needs: BPF tracepoint
 * programs, ring buffers (Linux 5.8+). Sends one event per kill() aimed at
 * TARGET_PID (-D flag) through the ring buffer `events`. The learner writes the
 * Python that compiles it, attaches it, polls `events` and cleans up.
 */
struct kill_event {
	u32 sender_pid;
	s32 target_pid;
	s32 sig;
};

BPF_RINGBUF_OUTPUT(events, 1 << 4);

int on_kill(struct tracepoint__syscalls__sys_enter_kill *args)
{
	struct kill_event *e;

	if ((s32)args->pid != TARGET_PID)
		return 0;
	e = events.ringbuf_reserve(sizeof(*e));
	if (!e)
		return 0;
	e->sender_pid = bpf_get_current_pid_tgid() >> 32;
	e->target_pid = (s32)args->pid;
	e->sig = (s32)args->sig;
	events.ringbuf_submit(e, 0);
	return 0;
}

/* License: GPL (bpf_get_current_pid_tgid). */
