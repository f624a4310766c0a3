// SPDX-License-Identifier: GPL-2.0
/*
 * Smoke test of the guest-kernel tier (tests/guest/test_kprobe_smoke.py):
 * proves that kprobes, kretprobes and PT_REGS_RC work on the kernel the
 * tests run on, before and independently of the lessons.
 *
 * Hooks: kprobe on the kill syscall's kernel function, and a kretprobe on it
 * (on_kill_return); the name comes from bcc's get_syscall_fnname("kill").
 * The entry handler depends on that function's shape: on_kill_entry for a
 * wrapper (__x64_sys_kill, x86-64 4.17+: its one argument is the user's
 * struct pt_regs *), on_kill_entry_direct for sys_kill(pid, sig).
 * Needs: kprobes (CONFIG_KPROBES), which some hosts lack: see the guest tier.
 *
 * Parameters (-D flags):
 *   WATCH_PID        only kill() calls made by this process (tgid)
 */
#include <uapi/linux/ptrace.h>

struct kill_seen {
	s64 ret;   /* the syscall's result, PT_REGS_RC at return: 0 or -errno */
	s32 sig;   /* the signal asked for */
	u32 calls; /* returns seen for this target */
};

struct kill_call {
	s32 target;
	s32 sig;
};

BPF_HASH(inflight, u32, struct kill_call, 64);  /* thread id -> arguments at entry */
BPF_HASH(seen, s32, struct kill_seen, 64);      /* target pid -> what the return saw */

static __always_inline int kill_entry(long pid, long sig)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct kill_call c = {};

	if ((id >> 32) != WATCH_PID)
		return 0;
	c.target = (s32)pid;
	c.sig = (s32)sig;
	inflight.update(&tid, &c);
	return 0;
}

int on_kill_entry(struct pt_regs *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
	long pid = 0, sig = 0;

	bpf_probe_read_kernel(&pid, sizeof(pid), &PT_REGS_PARM1_SYSCALL(regs));
	bpf_probe_read_kernel(&sig, sizeof(sig), &PT_REGS_PARM2_SYSCALL(regs));
	return kill_entry(pid, sig);
}

int on_kill_entry_direct(struct pt_regs *ctx)
{
	return kill_entry(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx));
}

int on_kill_return(struct pt_regs *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct kill_call *c = inflight.lookup(&tid);
	struct kill_seen zero = {}, *s;
	s32 target;

	if (!c)
		return 0;
	target = c->target;
	s = seen.lookup_or_try_init(&target, &zero);
	if (s) {
		s->ret = (s64)PT_REGS_RC(ctx);
		s->sig = c->sig;
		s->calls += 1;
	}
	inflight.delete(&tid);
	return 0;
}

/* License: GPL (bcc loads programs as GPL by default). */
