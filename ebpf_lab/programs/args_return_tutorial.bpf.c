// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03 — the tutorial's own example of arguments and return values
 * (进阶用法): a kprobe and a kretprobe on blk_insert_cloned_request.
 *
 *     b.attach_kprobe(event="blk_insert_cloned_request", fn_name="get_segments")
 *     b.attach_kretprobe(event="blk_insert_cloned_request", fn_name="get_segments_res")
 *
 * Needs: kprobes (CONFIG_KPROBES) and a kernel that has the function.
 *
 * The function's typed arguments follow struct pt_regs *ctx; bcc turns them
 * into reads of the argument registers. In a kretprobe, PT_REGS_RC(ctx) is
 * the return value. The tutorial leaves the bodies out ("..."); here they
 * count calls and results, so the lab can show how often the hook fired.
 *
 * blk_insert_cloned_request() is called by request-based device-mapper
 * (dm-multipath) to hand a cloned request to the underlying device. Without
 * multipath storage nothing calls it.
 *
 * The signature below is the tutorial's, kept as printed, and it is wrong on
 * current kernels: since about Linux 5.16 the function takes only
 * (struct request *rq), and no_sg_merge never was one of its arguments. bcc
 * does not check declared arguments: they are read from the argument
 * registers in order, whatever they are called. In the kretprobe the declared
 * arguments hold nothing useful (the registers were reused by the time the
 * function returns); only PT_REGS_RC(ctx) is meaningful there. Check a
 * function's signature in the running kernel's BTF (lesson 03 shows how).
 *
 * q and rq are pointers to kernel structs. This program never dereferences
 * them: with headers of another kernel version their offsets would be wrong.
 */
#include <uapi/linux/ptrace.h>
#include <linux/blkdev.h>

BPF_ARRAY(calls, u64, 3);  /* [0] entries, [1] returns with 0 (BLK_STS_OK), [2] other results */

int get_segments(struct pt_regs *ctx, struct request_queue *q, struct request *rq, bool no_sg_merge)
{
	calls.increment(0);
	return 0;
}

int get_segments_res(struct pt_regs *ctx, struct request_queue *q, struct request *rq)
{
	int ret = PT_REGS_RC(ctx);

	calls.increment(ret == 0 ? 1 : 2);
	return 0;
}

/* License: GPL (bcc's default for its programs). */
