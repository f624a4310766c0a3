// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 00 — the doctor's probes. One tiny handler per hook type; the doctor
 * loads and attaches each to find out, by trying, what this kernel really
 * supports (a kernel config can advertise what the kernel then refuses).
 * Needs: the bpf() syscall. Each handler only counts that it ran.
 */
BPF_ARRAY(hits, u64, 8);
BPF_PERF_OUTPUT(perf_probe);
BPF_RINGBUF_OUTPUT(ring_probe, 1);

static __always_inline void hit(int i) { hits.increment(i); }

int on_kprobe(struct pt_regs *ctx) { hit(0); return 0; }
int on_kretprobe(struct pt_regs *ctx) { hit(1); return 0; }
int on_tracepoint(void *ctx) { hit(2); return 0; }
int on_raw_tracepoint(void *ctx) { hit(3); return 0; }
int on_uprobe(struct pt_regs *ctx) { hit(4); return 0; }

int on_perf_output(void *ctx)
{
	u64 v = 1;
	perf_probe.perf_submit(ctx, &v, sizeof(v));
	hit(5);
	return 0;
}

int on_ring_output(void *ctx)
{
	u64 v = 1;
	ring_probe.ringbuf_output(&v, sizeof(v), 0);
	hit(6);
	return 0;
}

int on_sched_cls(struct __sk_buff *skb) { return 0; /* TC_ACT_OK */ }
int on_xdp(struct xdp_md *ctx) { return 2; /* XDP_PASS */ }

/* License: GPL (bcc's default), needed for on_perf_output: bpf_perf_event_output()
 * is GPL-only. */
