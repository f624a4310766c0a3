// SPDX-License-Identifier: GPL-2.0
/*
 * `ebpf-lab bench helpers` — what each piece of a per-event program costs.
 * Hook: tracepoint kmem:kmalloc. The kernel times each run (BPF_ENABLE_STATS);
 * every variant below is "count" (the storm's pid tested, one counter
 * incremented: the part every lesson program has) plus one piece of lesson
 * 02's program (kmalloc.bpf.c), so its time minus count's is that piece.
 *
 *   PIECE=0  empty: returns at once (what attaching anything costs)
 *   PIECE=1  count
 *   PIECE=2  + bpf_ktime_get_ns()              (every event's timestamp)
 *   PIECE=3  + bpf_ktime_get_ns() twice        (a second call, warm)
 *   PIECE=4  + bpf_get_current_comm()          (the process name, copied)
 *   PIECE=5  + bpf_get_current_task()          (a name cache keyed by the task)
 *   PIECE=6  + bpf_ringbuf_query()             (the wake-up test, lab_ring.h)
 *   PIECE=7  + bpf_get_smp_processor_id()
 *   PIECE=8  + bpf_ktime_get_ns() and a 56-byte ring record (reserve, write
 *            the timestamp and the pid, submit without a wake-up): the least
 *            a program that sends every event to user space does
 *   ONLY_PID the storm's pid
 *   RING_PAGES (PIECE=8) a ring large enough for the whole storm: nobody
 *            drains it here, and a full ring would time the failure path
 *            (each failed reservation is counted in count[1])
 */
#ifndef RING_PAGES
#define RING_PAGES 1
#endif
struct record {
	u64 ts_ns;
	u64 id;
	char rest[40];   /* the size of lesson 02's record (kmalloc.bpf.c) */
};
BPF_RINGBUF_OUTPUT(ring, RING_PAGES);
BPF_ARRAY(count, u64, 2);

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
#if PIECE == 0
	return 0;
#else
	u64 id = bpf_get_current_pid_tgid();
	int zero = 0;

	if ((id >> 32) != ONLY_PID)
		return 0;
	u64 *c = count.lookup(&zero);
	if (!c)
		return 0;
#if PIECE == 2
	*c += bpf_ktime_get_ns();
#elif PIECE == 3
	*c += bpf_ktime_get_ns();
	*c += bpf_ktime_get_ns();
#elif PIECE == 4
	char comm[16];
	bpf_get_current_comm(comm, sizeof(comm));
	*c += comm[0];
#elif PIECE == 5
	*c += bpf_get_current_task();
#elif PIECE == 6
	/* `ring` by its position, as lab_ring.h does (bcc 0.26 has no ring.ringbuf_query()) */
	*c += bpf_ringbuf_query((void *)bpf_pseudo_fd(1, -1), BPF_RB_AVAIL_DATA);
#elif PIECE == 7
	*c += bpf_get_smp_processor_id();
#elif PIECE == 8
	struct record *r = ring.ringbuf_reserve(sizeof(struct record));
	if (!r) {
		int one = 1;
		count.increment(one);
		return 0;
	}
	r->ts_ns = bpf_ktime_get_ns();
	r->id = id;
	__builtin_memset(r->rest, 0, sizeof(r->rest));
	*c += 1;
	ring.ringbuf_submit(r, BPF_RB_NO_WAKEUP);
#else
	*c += 1;
#endif
	return 0;
#endif
}
/* License: GPL (bcc's default). Of the helpers here only bpf_get_current_task() (PIECE=5) is
 * GPL-only; the other pieces' helpers are not. */
