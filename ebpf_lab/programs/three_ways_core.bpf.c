// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 06 — one small tool, three ways: this is the libbpf + CO-RE way
 * (the libbpf-bootstrap layout: this file, a loader three_ways_loader.c, a
 * header three_ways_core.h both include).
 *
 * Hook: tracepoint syscalls:sys_enter_kill (on_kill_entry), the same hook as
 * the bcc and the bpftrace versions.
 * Needs at build time: clang, and a vmlinux.h made from some kernel's BTF
 *   (bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h).
 * Needs at run time: only the running kernel's BTF (/sys/kernel/btf/vmlinux),
 *   BPF ring buffers (5.8+), libbpf, and the small loader.
 *
 * BPF_CORE_READ(task, real_parent, tgid) compiles to reads whose field
 * offsets clang records as CO-RE relocations (in .BTF.ext, thanks to -g and
 * vmlinux.h's preserve_access_index). When the loader loads this object,
 * libbpf looks each field up in the running kernel's BTF and patches the
 * offsets: built once, the object reads the right field on other kernels.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "three_ways_core.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_kill")
int on_kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->sender_pid = bpf_get_current_pid_tgid() >> 32;
	e->parent_pid = BPF_CORE_READ(task, real_parent, tgid);  /* relocated at load time */
	e->target_pid = (__s32)ctx->args[0];
	e->sig = (__s32)ctx->args[1];
	bpf_get_current_comm(&e->sender_comm, sizeof(e->sender_comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
