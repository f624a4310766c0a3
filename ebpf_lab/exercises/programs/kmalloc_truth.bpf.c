// SPDX-License-Identifier: GPL-2.0
/*
 * Grader's truth for the lesson-02 exercises (kmalloc-filter, kmalloc-per-pid).
 *
 * Hook: tracepoint kmem:kmalloc (on_kmalloc), attached next to the learner's
 * program on the same workload. Needs: BPF tracepoint programs, hash maps.
 * Counts, per watched process, what a right answer must report, and what
 * the usual wrong answers report instead (so the grader can name the mistake);
 * and bytes_alloc per process for every process (kmalloc-per-pid's Python part
 * is graded on these real totals even when the learner's C is still wrong).
 *
 * Parameters (-D flags): TARGET_PID, NOISE_PID (the two workload processes),
 * MIN_BYTES (the exercise's threshold).
 */
struct truth {
	u64 calls;          /* every kmalloc of the process */
	u64 alloc_sum;      /* sum of bytes_alloc */
	u64 req_sum;        /* sum of bytes_req */
	u64 ge_alloc;       /* calls with bytes_alloc >= MIN_BYTES (right) */
	u64 gt_alloc;       /* calls with bytes_alloc >  MIN_BYTES (off by one) */
	u64 ge_req;         /* calls with bytes_req   >= MIN_BYTES (wrong field) */
	u64 ge_alloc_sum;   /* sum of bytes_alloc over the right calls */
	u64 ge_req_sum;     /* sum of bytes_req over the right calls */
	u64 max_alloc;      /* largest single bytes_alloc */
};

BPF_HASH(truth_by_pid, u32, struct truth, 16);
BPF_HASH(all_bytes, u32, u64, 10240);

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct truth zero = {};
	struct truth *t;

	all_bytes.increment(pid, args->bytes_alloc);
	if (pid != TARGET_PID && pid != NOISE_PID)
		return 0;
	t = truth_by_pid.lookup_or_try_init(&pid, &zero);
	if (!t)
		return 0;
	__sync_fetch_and_add(&t->calls, 1);
	__sync_fetch_and_add(&t->alloc_sum, args->bytes_alloc);
	__sync_fetch_and_add(&t->req_sum, args->bytes_req);
	if (args->bytes_alloc >= MIN_BYTES) {
		__sync_fetch_and_add(&t->ge_alloc, 1);
		__sync_fetch_and_add(&t->ge_alloc_sum, args->bytes_alloc);
		__sync_fetch_and_add(&t->ge_req_sum, args->bytes_req);
	}
	if (args->bytes_alloc > MIN_BYTES)
		__sync_fetch_and_add(&t->gt_alloc, 1);
	if (args->bytes_req >= MIN_BYTES)
		__sync_fetch_and_add(&t->ge_req, 1);
	if (args->bytes_alloc > t->max_alloc)
		t->max_alloc = args->bytes_alloc;
	return 0;
}

/* License: GPL (bpf_get_current_pid_tgid). */
