// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 00 — the doctor's fentry probe (BPF trampolines on vfs_read).
 * Some kernels advertise fentry (BTF, bcc's support_kfunc() says yes) yet
 * refuse BPF_PROG_TYPE_TRACING programs: only loading one tells.
 *
 * One argument is declared (vfs_read's first, as an opaque pointer): bcc 0.18's
 * KFUNC_PROBE does not compile with none ("Failed to compile BPF module").
 */
KFUNC_PROBE(vfs_read, void *file)
{
	return 0;
}
