// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 02 — who is allocating memory?  (动手 2: kmem:kmalloc)
 *
 * Hooks: tracepoint kmem:kmalloc (on_kmalloc), plus kmem:kmalloc_node
 * (on_kmalloc_node, -DHOOK_KMALLOC_NODE) on kernels before 6.1 that have it,
 * and, for the tutorial's
 * "page_alloc works the same way", tracepoint kmem:mm_page_alloc
 * (on_page_alloc); with -DCOMM_CACHE, tracepoint task:task_rename
 * (on_task_rename, below). Needs: BPF tracepoint programs, BPF ring
 * buffers (5.8+).
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
 *   COMM_CACHE defined: each CPU reuses the name it copied for the same task;
 *              on_task_rename (task:task_rename) must then be attached too
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
 * call; in a storm most events on a CPU come from the task that sent the one
 * before. So each CPU keeps the last name it copied, with the task and thread
 * id it belongs to, and reuses it while the same task runs. A task's name
 * changes only in the kernel's __set_task_comm() (at exec, prctl(PR_SET_NAME),
 * a write to /proc/PID/comm), which fires the tracepoint task:task_rename:
 * on_task_rename, attached by the lesson beside its own hooks, writes down
 * when. A name copied less than RENAME_SETTLE_NS after the latest rename of
 * any task is not trusted and is copied again at the next event, so no row
 * carries a name older than a rename it follows (the tracepoint fires just
 * before the kernel copies the new name in). The thread id in the key keeps a
 * task_struct reused by a new thread from inheriting the old thread's name. */
#ifdef COMM_CACHE
#define RENAME_SETTLE_NS 10000000ULL   /* 10 ms */
struct comm_entry {
	u64 task;        /* bpf_get_current_task() the name was copied from */
	u64 copied_ns;   /* when (bpf_ktime_get_ns()) */
	u32 tid;
	u32 _pad;
	char comm[16];
};
BPF_PERCPU_ARRAY(comm_cache, struct comm_entry, 1);
BPF_ARRAY(renamed_ns, u64, 1);   /* bpf_ktime_get_ns() at the latest task:task_rename */

int on_task_rename(void *ctx)
{
	int zero = 0;
	u64 *renamed = renamed_ns.lookup(&zero);

	if (renamed)
		*renamed = bpf_ktime_get_ns();
	return 0;
}
#endif

static __always_inline void current_comm(char *comm, u32 tid, u64 now_ns)
{
#ifdef COMM_CACHE
	int zero = 0;
	struct comm_entry *c = comm_cache.lookup(&zero);
	u64 *renamed = renamed_ns.lookup(&zero);
	u64 task = bpf_get_current_task();

	if (c && renamed) {
		if (c->task != task || c->tid != tid || c->copied_ns < *renamed + RENAME_SETTLE_NS) {
			bpf_get_current_comm(&c->comm, sizeof(c->comm));
			c->task = task;
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

/* License: GPL (bcc's default). Without -DCOMM_CACHE the program uses none of
 * the GPL-only helpers: the ring buffer helpers, bpf_get_current_comm(),
 * bpf_ktime_get_ns() and bpf_get_smp_processor_id() are open to any program.
 * With it, the name cache's bpf_get_current_task() is GPL-only. */
