// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 02 — the tutorial's own program, as printed (动手 2).
 * Hook: tracepoint kmem:kmalloc through bcc's TRACEPOINT_PROBE macro.
 * Output: bpf_trace_printk() into the kernel's shared trace_pipe.
 */
TRACEPOINT_PROBE(kmem,kmalloc){
    if( (size_t)args->bytes_alloc >= 128){  //把申请内存大于128bytes的打印出来
    bpf_trace_printk("bytes_alloc: %d \n", args->bytes_alloc);
    }
    return 0;
}
/* License: GPL (bcc's default for programs without a license section), needed for
 * bpf_trace_printk(), a GPL-only helper. */
