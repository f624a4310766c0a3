// SPDX-License-Identifier: GPL-2.0
/*
 * tests/test_ingest.py: records whose ring stride (48 bytes) does not divide
 * the ring (one page), so that some straddle its end. Hook: tracepoint
 * kmem:kmalloc, only the storm's pid (ONLY_PID). Needs BPF ring buffers.
 */
struct rec { u64 seq; u64 triple; u64 inverse; u64 pid; u64 tail; };   /* 40 bytes: 48 in the ring */
BPF_RINGBUF_OUTPUT(events, 1);                                          /* one page: 85 1/3 records */
BPF_ARRAY(counts, u64, 2);                                              /* [0] made, [1] dropped */

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
	int made = 0, dropped = 1;
	if ((bpf_get_current_pid_tgid() >> 32) != ONLY_PID)
		return 0;
	u64 *n = counts.lookup(&made);
	if (!n)
		return 0;
	u64 seq = __sync_fetch_and_add(n, 1);
	struct rec *r = events.ringbuf_reserve(sizeof(struct rec));
	if (!r) {
		counts.increment(dropped);
		return 0;
	}
	r->seq = seq;
	r->triple = seq * 3;
	r->inverse = ~seq;
	r->pid = ONLY_PID;
	r->tail = 0x5a5a5a5a5a5a5a5aULL;
	events.ringbuf_submit(r, 0);
	return 0;
}

/* License: GPL (bcc's default). */
