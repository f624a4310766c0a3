// SPDX-License-Identifier: GPL-2.0
/*
 * Grader's truth for exercise kmalloc-per-pid: bytes_alloc per process, for
 * every process, so the learner's top_allocators() is graded on real totals
 * even when their own C program is still wrong.
 *
 * Hook: tracepoint kmem:kmalloc (on_kmalloc). Needs: BPF tracepoint programs.
 */
BPF_HASH(all_bytes, u32, u64, 10240);

int on_kmalloc(struct tracepoint__kmem__kmalloc *args)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;

	all_bytes.increment(pid, args->bytes_alloc);
	return 0;
}

/* License: GPL (bpf_get_current_pid_tgid). */
