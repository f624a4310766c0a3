// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 00 — the doctor's fentry probe (BPF trampolines on vfs_read).
 * Some kernels advertise fentry (BTF, bcc's support_kfunc() says yes) yet
 * refuse BPF_PROG_TYPE_TRACING programs: only loading one tells.
 */
KFUNC_PROBE(vfs_read)
{
	return 0;
}
