// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 02 — getting data out of the kernel: the same kmalloc event through
 * one of three channels, chosen with a -D flag:
 *   -DCHANNEL_PRINTK   bpf_trace_printk(): text into the kernel's trace_pipe,
 *                      shared by every program on the machine
 *   -DCHANNEL_PERF     BPF_PERF_OUTPUT: one perf buffer per CPU; user space
 *                      polls them all (open_perf_buffer / perf_buffer_poll)
 *   -DCHANNEL_RINGBUF  BPF_RINGBUF_OUTPUT: one ring buffer shared by all CPUs,
 *                      in submission order (Linux 5.8+; open_ring_buffer /
 *                      ring_buffer_poll)
 * Hook: tracepoint kmem:kmalloc, through TRACEPOINT_PROBE — bcc attaches it by
 * itself while BPF() is created, so a loader needs no attach line.
 * Needs: BPF tracepoint programs; the ring buffer variant Linux 5.8+.
 *
 * Parameters (-D flags):
 *   ONLY_PID       0: every process; else only this process id (tgid)
 *   RINGBUF_PAGES  size of the ring buffer in pages (a power of two)
 * The per-CPU counters let user space compute what a channel lost:
 *   seen     events offered to the channel
 *   dropped  ring buffer only: events it had no room for
 */
#if !defined(CHANNEL_PRINTK) && !defined(CHANNEL_PERF) && !defined(CHANNEL_RINGBUF)
#error "choose the channel: compile with -DCHANNEL_PRINTK, -DCHANNEL_PERF or -DCHANNEL_RINGBUF"
#endif
#ifndef ONLY_PID
#define ONLY_PID 0
#endif
#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 64
#endif

struct event {
	u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	u32 pid;          /* process (tgid) */
	u32 bytes_alloc;  /* what the allocator handed out */
	u32 cpu;          /* CPU the allocation ran on */
	u32 _pad;
};

BPF_PERCPU_ARRAY(seen, u64, 1);
BPF_PERCPU_ARRAY(dropped, u64, 1);
#if defined(CHANNEL_PERF)
BPF_PERF_OUTPUT(events);
#elif defined(CHANNEL_RINGBUF)
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
#endif

TRACEPOINT_PROBE(kmem, kmalloc)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	int zero = 0;

	if (ONLY_PID && pid != ONLY_PID)
		return 0;
	u64 *n = seen.lookup(&zero);
	if (n)
		(*n)++;
#if defined(CHANNEL_PRINTK)
	bpf_trace_printk("ebl-channel %u\n", args->bytes_alloc);  /* a marker: the pipe is shared */
#else
	struct event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.pid = pid;
	e.bytes_alloc = args->bytes_alloc;
	e.cpu = bpf_get_smp_processor_id();
#if defined(CHANNEL_PERF)
	events.perf_submit(args, &e, sizeof(e));  /* a full per-CPU buffer: user space hears of it (lost_cb) */
#else
	if (events.ringbuf_output(&e, sizeof(e), 0) < 0) {
		u64 *d = dropped.lookup(&zero);
		if (d)
			(*d)++;
	}
#endif
#endif
	return 0;
}

/* License: GPL (bcc's default). CHANNEL_PRINTK and CHANNEL_PERF need it:
 * bpf_trace_printk() and bpf_perf_event_output() are GPL-only; the ring buffer
 * helpers (CHANNEL_RINGBUF) are not. */
