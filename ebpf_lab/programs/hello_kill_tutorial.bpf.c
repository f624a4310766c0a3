// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 01 — hello kill: the tutorial's first program, exactly as printed
 * (动手: "我们来制作一个当捕捉到kill信号就会提示hello world的程序吧").
 *
 * Hook: the tutorial attaches it with
 *     b.attach_kprobe(event="__x64_sys_kill", fn_name="hello_world")
 * The lab attaches it to the kill syscall's kernel function (bcc's
 * get_syscall_fnname("kill")) where the kernel has kprobes, else to the
 * tracepoint syscalls:sys_enter_kill: the function takes no arguments, so it
 * runs unchanged on either hook.
 * Needs: kprobes (CONFIG_KPROBES) or syscall tracepoints; bpf_trace_printk.
 *
 * The tutorial writes "Hello, World!\\n" because its C lives in a Python
 * string, where \\n becomes \n; in a .c file it is plain \n.
 */
int hello_world(){
	bpf_trace_printk("Hello, World!\n");
	return 0;
}

/* License: GPL (bcc loads programs as GPL by default; bpf_trace_printk needs it). */
