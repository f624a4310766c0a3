// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 02 — answers kept in maps, read from Python afterwards: nothing is
 * streamed. Hook: tracepoint kmem:kmalloc (TRACEPOINT_PROBE: bcc attaches it
 * by itself). Needs: BPF tracepoint programs, stack trace maps.
 *
 *   per_comm  BPF_HASH: allocations per process name
 *   sizes     BPF_HISTOGRAM: bpf_log2l(bytes_alloc) buckets (print_log2_hist)
 *   stacks    BPF_STACK_TRACE: kernel stacks of allocations >= BIG_BYTES
 *   big       BPF_HASH: stack id -> how many such allocations took that path
 *
 * Parameters (-D flags):
 *   BIG_BYTES  the size from which a stack is recorded (default 4096)
 *   ONLY_PID   0: every process; else only this process id (tgid)
 */
#ifndef BIG_BYTES
#define BIG_BYTES 4096
#endif
#ifndef ONLY_PID
#define ONLY_PID 0
#endif

struct comm_key {
	char comm[16];
};

BPF_HASH(per_comm, struct comm_key, u64, 1024);
BPF_HISTOGRAM(sizes, int, 64);
BPF_STACK_TRACE(stacks, 1024);
BPF_HASH(big, int, u64, 1024);

TRACEPOINT_PROBE(kmem, kmalloc)
{
	struct comm_key k = {};

	if (ONLY_PID && (bpf_get_current_pid_tgid() >> 32) != ONLY_PID)
		return 0;
	bpf_get_current_comm(&k.comm, sizeof(k.comm));
	per_comm.increment(k);
	sizes.increment(bpf_log2l(args->bytes_alloc));
	if (args->bytes_alloc >= BIG_BYTES) {
		int id = stacks.get_stackid(args, 0);  /* 0: kernel stack */
		if (id >= 0)
			big.increment(id);
	}
	return 0;
}

/* License: GPL (bcc's default), needed for get_stackid(): bpf_get_stackid() is GPL-only. */
