// SPDX-License-Identifier: GPL-2.0
/*
 * `ebpf-lab bench ingest` — the plain-bcc ways of getting kmalloc events to
 * user space, to compare with the lab's collector (lesson 02's kmalloc.bpf.c).
 * Hook: tracepoint kmem:kmalloc. Needs: ring buffers (5.8+) for OUTPUT=2.
 *
 *   OUTPUT=0  bpf_trace_printk into trace_pipe (the tutorial's way)
 *   OUTPUT=1  BPF_PERF_OUTPUT, one wake-up per event (bcc's examples)
 *   OUTPUT=2  BPF_RINGBUF_OUTPUT, ringbuf_output(..., 0): one wake-up per event
 *   OUTPUT=3  count only: the pid test and one counter increment, nothing sent
 *   OUTPUT=4  empty: returns at once (the floor: what attaching anything costs)
 *   ONLY_PID  the storm's pid; `count` counts its events in the kernel (the truth)
 */
#ifndef OUTPUT
#define OUTPUT 2
#endif

/* The same record as lesson 02's (kmalloc.bpf.c): the same bytes cross the ring. */
struct alloc_event {
	u64 ts_ns;
	u64 call_site;
	u32 pid;
	u32 tid;
	u32 bytes_req;
	u32 bytes_alloc;
	u32 gfp_flags;
	u16 cpu;
	u8 kind;
	u8 _pad;
	char comm[16];
};

BPF_ARRAY(count, u64, 1);
#if OUTPUT == 1
BPF_PERF_OUTPUT(events);
#elif OUTPUT == 2
BPF_RINGBUF_OUTPUT(events, 1 << 12);
#endif

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
#if OUTPUT == 4
	return 0;
#else
	u64 id = bpf_get_current_pid_tgid();
	int zero = 0;

	if ((id >> 32) != ONLY_PID)
		return 0;
	count.increment(zero);
#if OUTPUT == 3
	return 0;
#elif OUTPUT == 0
	bpf_trace_printk("bytes_alloc: %d \n", args->bytes_alloc);
#else
	struct alloc_event e = {};
	e.ts_ns = bpf_ktime_get_ns();
	e.call_site = args->call_site;
	e.pid = id >> 32;
	e.tid = (u32)id;
	e.bytes_req = args->bytes_req;
	e.bytes_alloc = args->bytes_alloc;
	e.gfp_flags = args->gfp_flags;
	e.cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
#if OUTPUT == 1
	events.perf_submit(args, &e, sizeof(e));
#else
	events.ringbuf_output(&e, sizeof(e), 0);
#endif
#endif
	return 0;
#endif
}
/* License: GPL (bcc's default). OUTPUT=0 and OUTPUT=1 need it: bpf_trace_printk()
 * and bpf_perf_event_output() are GPL-only; the ring buffer helpers are not. */
