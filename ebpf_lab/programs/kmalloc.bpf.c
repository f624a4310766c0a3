// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 02 — who is allocating memory?  (动手 2: kmem:kmalloc)
 *
 * Hooks: tracepoint kmem:kmalloc (on_kmalloc), plus kmem:kmalloc_node
 * (on_kmalloc_node, -DHOOK_KMALLOC_NODE) on kernels before 6.1 that have it,
 * and, for the tutorial's
 * "page_alloc works the same way", tracepoint kmem:mm_page_alloc
 * (on_page_alloc); with -DCOMM_CACHE, tracepoints task:task_rename
 * (on_task_rename) and task:task_newtask (on_task_newtask, below).
 * Needs: BPF tracepoint programs, BPF ring buffers (5.8+).
 * Tracepoint arguments come from the running kernel's tracefs format files,
 * so they are right even when the compile headers are not the kernel's own.
 *
 * Parameters (-D flags):
 *   MIN_BYTES  only allocations with bytes_alloc >= MIN_BYTES are reported
 *   STREAM     1: send one event per allocation to user space;
 *              0: only aggregate in the kernel (the histogram below)
 *   ONLY_PID   0: every process; else only this process id (tgid)
 *   RING_PAGES size of the ring buffer in 4 KiB pages (a power of two)
 *   WAKE_BYTES wake the collector when this much data waits in the ring
 *              (default: an eighth of it; see lab_ring.h)
 *   COMM_CACHE defined: each CPU reuses the name it copied for the same thread;
 *              on_task_rename (task:task_rename) and on_task_newtask
 *              (task:task_newtask) must then be attached too
 *              (see current_comm() below)
 */
#ifndef MIN_BYTES
#define MIN_BYTES 128
#endif
#ifndef STREAM
#define STREAM 1
#endif
#ifndef ONLY_PID
#define ONLY_PID 0
#endif
#ifndef RING_PAGES
#define RING_PAGES 2048   /* 8 MiB: ~130,000 events, ~0.13 s of a one-CPU storm at 1M events/s */
#endif

struct alloc_event {
	u64 ts_ns;        /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	u64 call_site;    /* kernel address that called kmalloc (0 for pages) */
	u32 pid;          /* process (tgid) */
	u32 tid;          /* thread */
	u32 bytes_req;    /* what the caller asked for */
	u32 bytes_alloc;  /* what the allocator handed out (>= bytes_req) */
	u32 gfp_flags;
	u16 cpu;
	u8 kind;          /* 0 = kmem:kmalloc, 1 = page allocation, 2 = kmem:kmalloc_node */
	u8 _pad;
	char comm[16];
};

/* Events travel through a ring buffer, submitted without waking the
 * collector except when a lot waits (wake_flags_every(), in lab_ring.h: it
 * asks the ring at one event in 16 of each CPU's). Keep `events` the first
 * map in this file: wake_flags names it by its position. */
BPF_RINGBUF_OUTPUT(events, RING_PAGES);
/* The lesson's counters, one value per CPU: one map lookup per event, and
 * plain increments (no other CPU writes this CPU's copy). */
struct alloc_stats {
	u64 seen;         /* allocations seen */
	u64 reported;     /* ... that passed the filters */
	u64 lost;         /* ... that the ring had no room for */
	u64 sizes[64];    /* log2(bytes_alloc) histogram, aggregated in the kernel */
};
BPF_PERCPU_ARRAY(stats, struct alloc_stats, 1);

#define EVENTS_MAP_POSITION 1
#include "lab_ring.h"
/* The process name of each event, copied once per task rather than once per
 * event (-DCOMM_CACHE; without it, current_comm() is bpf_get_current_comm()).
 *
 * bpf_get_current_comm() copies the 16-byte name out of the task at every
 * call; in a storm most events on a CPU come from the thread that sent the one
 * before. So each CPU keeps the last name it copied, with the thread id it
 * belongs to, and reuses it while the same thread runs. Two tracepoints, which
 * the lesson attaches beside its own hooks, say when a kept name may be stale:
 *  - a task's name changes only in the kernel's __set_task_comm() (at exec,
 *    prctl(PR_SET_NAME), a write to /proc/PID/comm), which fires
 *    task:task_rename just before it copies the new name in: on_task_rename
 *    writes down when, and a name copied less than RENAME_SETTLE_NS after the
 *    latest rename of any task is not trusted and is copied again at the next
 *    event, so no row carries a name older than a rename it follows;
 *  - a thread id is reused only by a new task, and task:task_newtask fires for
 *    every new task before it first runs: on_task_newtask writes down when,
 *    and a name copied before the latest new task is copied again, so a new
 *    thread never inherits the name of an old one that had its id.
 * (Keying the cache by the task itself, bpf_get_current_task(), would cost a
 * helper call per event: `ebpf-lab bench helpers` prints how much.) */
#ifdef COMM_CACHE
#define RENAME_SETTLE_NS 10000000ULL   /* 10 ms */
struct comm_entry {
	u64 copied_ns;   /* when (bpf_ktime_get_ns()) */
	u32 tid;
	u32 _pad;
	char comm[16];
};
BPF_PERCPU_ARRAY(comm_cache, struct comm_entry, 1);
struct names_changed {
	u64 renamed_ns;  /* bpf_ktime_get_ns() at the latest task:task_rename */
	u64 created_ns;  /* ... and at the latest task:task_newtask */
};
BPF_ARRAY(names_changed, struct names_changed, 1);

int on_task_rename(void *ctx)
{
	int zero = 0;
	struct names_changed *n = names_changed.lookup(&zero);

	if (n)
		n->renamed_ns = bpf_ktime_get_ns();
	return 0;
}

int on_task_newtask(void *ctx)
{
	int zero = 0;
	struct names_changed *n = names_changed.lookup(&zero);

	if (n)
		n->created_ns = bpf_ktime_get_ns();
	return 0;
}
#endif

static __always_inline void current_comm(char *comm, u32 tid, u64 now_ns)
{
#ifdef COMM_CACHE
	int zero = 0;
	struct comm_entry *c = comm_cache.lookup(&zero);
	struct names_changed *n = names_changed.lookup(&zero);

	if (c && n) {
		if (c->tid != tid || c->copied_ns < n->renamed_ns + RENAME_SETTLE_NS ||
		    c->copied_ns < n->created_ns) {
			bpf_get_current_comm(&c->comm, sizeof(c->comm));
			c->tid = tid;
			c->copied_ns = now_ns;
		}
		__builtin_memcpy(comm, c->comm, 16);
		return;
	}
#endif
	bpf_get_current_comm(comm, 16);
}


static __always_inline int report(u64 call_site, u32 req, u32 alloc, u32 gfp, u8 kind)
{
	u64 id = bpf_get_current_pid_tgid();
	int zero = 0;

	if (ONLY_PID && (id >> 32) != ONLY_PID)
		return 0;
	struct alloc_stats *st = stats.lookup(&zero);
	if (!st)
		return 0;
	st->seen++;
	if (alloc < MIN_BYTES)
		return 0;
	st->reported++;
	st->sizes[bpf_log2l(alloc) & 63]++;
	if (!STREAM)
		return 0;

	struct alloc_event *e = events.ringbuf_reserve(sizeof(struct alloc_event));
	if (!e) {
		st->lost++;
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->call_site = call_site;
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->bytes_req = req;
	e->bytes_alloc = alloc;
	e->gfp_flags = gfp;
	e->cpu = bpf_get_smp_processor_id();
	e->kind = kind;
	e->_pad = 0;
	current_comm(e->comm, (u32)id, e->ts_ns);
	events.ringbuf_submit(e, wake_flags_every(sizeof(*e), st->reported));
	return 0;
}

/* bcc builds struct tracepoint__kmem__kmalloc from
 * /sys/kernel/tracing/events/kmem/kmalloc/format. */
int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
	return report(args->call_site, args->bytes_req, args->bytes_alloc,
		      args->gfp_flags, 0);
}

#ifdef HOOK_KMALLOC_NODE
/* Kernels before 6.1 send kmalloc_node() and kmalloc of large sizes through a
 * separate tracepoint, kmem:kmalloc_node (same fields plus node); 6.1 merged it
 * into kmem:kmalloc. The lesson compiles this entry point, with
 * -DHOOK_KMALLOC_NODE, only where tracefs lists kmem:kmalloc_node: bcc can
 * build struct tracepoint__kmem__kmalloc_node only from an existing format file.
 * Its rows carry kind 2, so the DataFrame says which tracepoint saw each one. */
int on_kmalloc_node(struct tracepoint__kmem__kmalloc_node *args)
{
	return report(args->call_site, args->bytes_req, args->bytes_alloc,
		      args->gfp_flags, 2);
}
#endif

int on_page_alloc(struct tracepoint__kmem__mm_page_alloc *args)
{
	u32 bytes = 4096u << args->order;
	return report(0, bytes, bytes, args->gfp_flags, 1);
}

/* License: GPL (bcc's default). The program uses none of the GPL-only
 * helpers: the ring buffer helpers, bpf_get_current_comm(),
 * bpf_ktime_get_ns() and bpf_get_smp_processor_id() are open to any program. */
