"""Deliberately wrong answers, each made from an exercise's reference solution by small edits.

Each must be rejected by the grader at the named check, with a message or hint
containing the named words (case-insensitive): that is the "right hint".
An edit whose ``old`` text is not in the reference fails the test, so these
cannot silently turn into right answers when a solution is reworded.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Tuple


@dataclasses.dataclass
class Wrong:
    name: str
    check: str                         # the check that must fail
    words: str                         # must appear in that check's message or hint
    bpf: Tuple[Tuple[str, str], ...] = ()        # (old, new) edits of PROGRAM
    py: Tuple[Tuple[str, str, str], ...] = ()    # (function, old, new) edits of a Python answer


WRONG: Dict[str, List[Wrong]] = {
    "kmalloc-filter": [
        Wrong("missing-semicolon", "compiles", "semicolon", bpf=(("e->pid = pid;", "e->pid = pid"),)),
        Wrong("no-null-check", "loads", "NULL", bpf=(("    if (!e)\n        return 0;\n", ""),)),
        Wrong("more-than", "complete", "(>=)", bpf=(("args->bytes_alloc < MIN_BYTES", "args->bytes_alloc <= MIN_BYTES"),)),
        Wrong("bytes-req", "complete", "bytes_req", bpf=(("args->bytes_alloc < MIN_BYTES", "args->bytes_req < MIN_BYTES"),)),
        Wrong("no-pid-filter", "only-target", "equals TARGET_PID", bpf=(("pid != TARGET_PID || ", ""),)),
        Wrong("whole-id", "fires", "upper half", bpf=(("u32 pid = bpf_get_current_pid_tgid() >> 32;",
                                                  "u64 pid = bpf_get_current_pid_tgid();"),)),
        Wrong("swapped-sizes", "threshold", "swapped", bpf=(("e->bytes_req = args->bytes_req;\n    e->bytes_alloc = args->bytes_alloc;",
                                                         "e->bytes_req = args->bytes_alloc;\n    e->bytes_alloc = args->bytes_req;"),)),
        Wrong("no-comm", "fields", "name of the process", bpf=(("    bpf_get_current_comm(&e->comm, sizeof(e->comm));\n", ""),)),
    ],
    "kmalloc-per-pid": [
        Wrong("undeclared", "compiles", "not declared", bpf=(("    bytes_by_pid.increment", "    if (pid != TARGET_PID)\n        return 0;\n    bytes_by_pid.increment"),)),
        Wrong("bytes-req", "target-total", "bytes_req", bpf=(("increment(pid, args->bytes_alloc)", "increment(pid, args->bytes_req)"),)),
        Wrong("counts-calls", "target-total", "counted allocations", bpf=(("increment(pid, args->bytes_alloc)", "increment(pid)"),)),
        Wrong("update-replaces", "target-total", "replaces", bpf=(("bytes_by_pid.increment(pid, args->bytes_alloc);",
                                                                  "u64 v = args->bytes_alloc;\n    bytes_by_pid.update(&pid, &v);"),)),
        Wrong("pinned-map", "clean", "BPF_TABLE_PINNED", bpf=(("BPF_HASH(bytes_by_pid, u32, u64, 10240);",
                                                               f'BPF_TABLE_PINNED("hash", u32, u64, bytes_by_pid, 10240, "/sys/fs/bpf/ebl-ex-pinned-{os.getpid()}");'),)),
        Wrong("u32-values", "map", "u32, u64", bpf=(("BPF_HASH(bytes_by_pid, u32, u64, 10240)", "BPF_HASH(bytes_by_pid, u32, u32, 10240)"),)),
        Wrong("ascending", "py-top", "increasing", py=(("top_allocators", "ascending=[False, True]", "ascending=[True, True]"),)),
        Wrong("share-of-top", "py-share", "before taking the top n",
              py=(("top_allocators", '    df["share"] = df["bytes"] / df["bytes"].sum()\n', ""),
                  ("top_allocators", "    return df.head(n).reset_index(drop=True)",
                   '    df = df.head(n).reset_index(drop=True)\n    df["share"] = df["bytes"] / df["bytes"].sum()\n    return df'))),
        Wrong("percent", "py-share", "percent", py=(("top_allocators", 'df["bytes"] / df["bytes"].sum()', '100 * df["bytes"] / df["bytes"].sum()'),)),
        Wrong("endless-loop", "py-runs", "did not return", py=(("top_allocators", "    return df.head(n)", "    while True:\n        pass\n    return df.head(n)"),)),
        Wrong("bad-column", "py-runs", "KeyError", py=(("top_allocators", 'df["bytes"].sum()', 'df["size"].sum()'),)),
    ],
    "kill-to-pid": [
        Wrong("undeclared", "compiles", "not declared", bpf=(("if (target_pid != TARGET_PID)", "if (target_pid != TARGET)"),)),
        Wrong("no-null-check", "loads", "NULL", bpf=(("    if (!e)\n        return 0;\n", ""),)),
        Wrong("filters-sender", "fires", "not the sender", bpf=(("if (target_pid != TARGET_PID)", "if ((bpf_get_current_pid_tgid() >> 32) != TARGET_PID)"),)),
        Wrong("no-filter", "only-target", "TARGET_PID", bpf=(("    if (target_pid != TARGET_PID)\n        return 0;\n", ""),)),
        Wrong("inverted", "only-target", "aimed at other pids", bpf=(("if (target_pid != TARGET_PID)", "if (target_pid == TARGET_PID)"),)),
        Wrong("sender-is-target", "fields", "caller's process id", bpf=(("e->sender_pid = bpf_get_current_pid_tgid() >> 32;", "e->sender_pid = target_pid;"),)),
        Wrong("sends-signals", "compiles", "does not run programs", bpf=(("    e->sig = sig;\n", "    e->sig = sig;\n    bpf_send_signal(9);\n"),)),
        Wrong("signal-not-set", "fields", "not a constant", bpf=(("    e->sig = sig;\n", "    e->sig = 1;\n"),)),
    ],
    "kill-signal-counts": [
        Wrong("update-replaces", "counts", "update() replaces", bpf=(("    counts.increment(key);", "    u64 one = 1;\n    counts.update(&key, &one);"),)),
        Wrong("swapped-key", "counts", "swapped", bpf=(("key.target = target_pid;\n    key.sig = sig;", "key.target = sig;\n    key.sig = target_pid;"),)),
        Wrong("no-signal-in-key", "counts", "signal is missing", bpf=(("    key.sig = sig;\n", ""),)),
        Wrong("missing-semicolon", "compiles", "semicolon", bpf=(("key.sig = sig;", "key.sig = sig"),)),
        Wrong("no-fill", "py-values", "fill", py=(("signal_table", ", fill_value=0", ""),)),
        Wrong("numbers-not-names", "py-shape", "signal.Signals", py=(("signal_table", 'df["signal"] = [signal.Signals(s).name if s else "check" for s in df["sig"]]',
                                                                     'df["signal"] = df["sig"]'),)),
        Wrong("signal-zero", "py-runs", "ValueError", py=(("signal_table", 'signal.Signals(s).name if s else "check"', "signal.Signals(s).name"),)),
    ],
    "openat-failures": [
        Wrong("missing-semicolon", "compiles", "semicolon", bpf=(("inflight.update(&tid, &p);", "inflight.update(&tid, &p)"),)),
        Wrong("no-null-check", "loads", "NULL", bpf=(("    if (!p)\n        return 0;\n    if (ret < 0)", "    if (ret < 0)"),)),
        Wrong("reports-successes", "only-failures", "only when ret < 0", bpf=(("if (ret < 0) {", "if (ret != 0) {"),)),
        Wrong("negative-errno", "only-failures", "err = -ret", bpf=(("e->err = -ret;", "e->err = ret;"),)),
        Wrong("kernel-read", "filenames", "bpf_probe_read_user_str", bpf=(("bpf_probe_read_user_str(&p.filename", "bpf_probe_read_kernel_str(&p.filename"),)),
        Wrong("path-not-copied", "filenames", "path", bpf=(("            __builtin_memcpy(e->filename, p->filename, sizeof(e->filename));\n", ""),)),
        Wrong("never-deleted", "no-leak", "delete", bpf=(("    inflight.delete(&tid);\n", ""),)),
    ],
    "openat-latency": [
        Wrong("no-null-check", "loads", "NULL", bpf=(("    if (!ts)\n        return 0;\n", ""),)),
        Wrong("timestamp", "plausible", "timestamp", bpf=(("bpf_log2l(bpf_ktime_get_ns() - *ts)", "bpf_log2l(bpf_ktime_get_ns())"),)),
        Wrong("milliseconds", "plausible", "do not divide", bpf=(("bpf_log2l(bpf_ktime_get_ns() - *ts)", "bpf_log2l((bpf_ktime_get_ns() - *ts) / 1000000)"),)),
        Wrong("never-deleted", "no-leak", "delete", bpf=(("    start.delete(&tid);\n", ""),)),
        Wrong("keeps-empty", "py-rows", "drop the empty", py=(("latency_table", " for k, n in sorted(dist.items()) if n]", " for k, n in sorted(dist.items())]"),)),
        Wrong("bounds", "py-rows", "2**(k-1)", py=(("latency_table", "(2 ** (k - 1) if k > 1 else 0, 2 ** k - 1, n)", "(2 ** k, 2 ** (k + 1) - 1, n)"),)),
        Wrong("slowest-first", "py-rows", "smallest first", py=(("latency_table", "sorted(dist.items())", "sorted(dist.items(), reverse=True)"),)),
    ],
    "tc-count-protocols": [
        Wrong("drops-everything", "passes-all", "TC_ACT_OK", bpf=(("    // ### END SOLUTION\n    return TC_ACT_OK;", "    // ### END SOLUTION\n    return TC_ACT_SHOT;"),)),
        Wrong("no-null-check", "loads", "NULL", bpf=(("    if (s) {\n        __sync_fetch_and_add(&s->packets, 1);\n        __sync_fetch_and_add(&s->bytes, skb->len);\n    }",
                                                    "    __sync_fetch_and_add(&s->packets, 1);\n    __sync_fetch_and_add(&s->bytes, skb->len);"),)),
        Wrong("ip-bytes-only", "counts", "ethernet", bpf=(("__sync_fetch_and_add(&s->bytes, skb->len);", "__sync_fetch_and_add(&s->bytes, skb->len - 14);"),)),
        Wrong("packets-are-bytes", "counts", "packets holds the bytes", bpf=(("__sync_fetch_and_add(&s->packets, 1);", "__sync_fetch_and_add(&s->packets, skb->len);"),)),
        Wrong("counted-twice", "counts", "count each packet once", bpf=(("__sync_fetch_and_add(&s->packets, 1);", "__sync_fetch_and_add(&s->packets, 2);"),)),
        # TCP arrives too (a connection's handshake, data and FIN, counted by the grader's packet tap)
        Wrong("icmp-and-udp-only", "counts", "count every ipv4 protocol", bpf=(("    u32 proto = ip->protocol;\n",
              "    u32 proto = ip->protocol;\n    if (proto != IPPROTO_ICMP && proto != IPPROTO_UDP)\n        return TC_ACT_OK;\n"),)),
        Wrong("fewest-first", "py-table", "most packets first", py=(("protocol_table", "ascending=[False, True]", "ascending=[True, True]"),)),
        Wrong("mean-upside-down", "py-table", "mean_bytes = bytes / packets", py=(("protocol_table", 'v["bytes"] / v["packets"]', 'v["packets"] / v["bytes"]'),)),
    ],
    "tc-drop-big-icmp": [
        Wrong("no-bounds-check", "loads", "data_end", bpf=(("    if ((void *)(ip + 1) > data_end)\n        return TC_ACT_OK;\n", ""),)),
        Wrong("more-than", "boundary", ">=", bpf=(("skb->len >= LIMIT", "skb->len > LIMIT"),)),
        Wrong("every-protocol", "udp-pass", "icmp only", bpf=(("ip->protocol == IPPROTO_ICMP && skb->len >= LIMIT", "skb->len >= LIMIT"),)),
        Wrong("drops-non-ip", "small-pass", "arp", bpf=(("    if (eth->h_proto != bpf_htons(ETH_P_IP))\n        return TC_ACT_OK;", "    if (eth->h_proto != bpf_htons(ETH_P_IP))\n        return TC_ACT_SHOT;"),)),
        Wrong("ip-length", "boundary", "14 (ethernet)", bpf=(("skb->len >= LIMIT", "bpf_ntohs(ip->tot_len) >= LIMIT"),)),
        Wrong("missing-semicolon", "compiles", "semicolon", bpf=(("        return TC_ACT_SHOT;", "        return TC_ACT_SHOT"),)),
    ],
    "xdp-drop-big-icmp": [
        Wrong("no-bounds-check", "loads", "data_end", bpf=(("    if ((void *)(ip + 1) > data_end)\n        return XDP_PASS;\n", ""),)),
        Wrong("more-than", "boundary", ">=", bpf=(("data_end - data >= LIMIT", "data_end - data > LIMIT"),)),
        Wrong("every-protocol", "udp-pass", "icmp only", bpf=(("ip->protocol == IPPROTO_ICMP && data_end - data >= LIMIT", "data_end - data >= LIMIT"),)),
        Wrong("drops-non-ip", "small-pass", "arp", bpf=(("    if (eth->h_proto != bpf_htons(ETH_P_IP))\n        return XDP_PASS;", "    if (eth->h_proto != bpf_htons(ETH_P_IP))\n        return XDP_DROP;"),)),
        Wrong("tc-verdict", "big-dropped", "XDP_DROP", bpf=(("        return XDP_DROP;", "        return TC_ACT_SHOT;"),)),
        Wrong("undeclared", "compiles", "not declared", bpf=(("data_end - data >= LIMIT", "data_end - data >= LIMT"),)),
    ],
    "xdp-then-tc": [
        Wrong("drops-at-tc", "xdp-alone", "belongs to on_xdp", bpf=(
            ("    if (ip->protocol == IPPROTO_ICMP && data_end - data >= LIMIT)\n        return XDP_DROP;\n", ""),
            ("        __sync_fetch_and_add(&s->bytes, skb->len);\n    }", "        __sync_fetch_and_add(&s->bytes, skb->len);\n    }\n    if (ip->protocol == IPPROTO_ICMP && skb->len >= LIMIT)\n        return TC_ACT_SHOT;"))),
        Wrong("tc-drops-all", "small-pass", "arp", bpf=(("    // ### END SOLUTION\n    return TC_ACT_OK;", "    // ### END SOLUTION\n    return TC_ACT_SHOT;"),)),
        Wrong("xdp-no-bounds", "loads", "data_end", bpf=(("    if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))\n        return XDP_PASS;\n",
                                                         "    if (eth->h_proto != bpf_htons(ETH_P_IP))\n        return XDP_PASS;\n"),)),
        Wrong("tc-counts-nothing", "tc-sees-survivors", "packets += 1", bpf=(("        __sync_fetch_and_add(&s->packets, 1);\n        __sync_fetch_and_add(&s->bytes, skb->len);\n", ""),)),
        Wrong("more-than", "boundary", ">=", bpf=(("data_end - data >= LIMIT", "data_end - data > LIMIT"),)),
    ],
    # new kinds of exercise: the answer to choose-the-hook is a tracepoint's name (edits of HOOK's string)
    "choose-the-hook": [
        Wrong("every-syscall", "once-per-call", "every system call", bpf=(("syscalls:sys_enter_chdir", "raw_syscalls:sys_enter"),)),
        Wrong("look-alike", "once-per-call", "look-alike", bpf=(("sys_enter_chdir", "sys_enter_fchdir"),)),
        Wrong("typo", "exists", "spelling", bpf=(("sys_enter_chdir", "sys_enter_chdri"),)),
        Wrong("bpftrace-name", "answered", "'tracepoint:' prefix", bpf=(("syscalls:", "tracepoint:syscalls:"),)),
        Wrong("kernel-function", "answered", "kprobe", bpf=(("syscalls:sys_enter_chdir", "__x64_sys_chdir"),)),
        Wrong("another-event", "fires", "another event", bpf=(("syscalls:sys_enter_chdir", "syscalls:sys_enter_mkdir"),)),
        Wrong("empty", "answered", "search", bpf=(("syscalls:sys_enter_chdir", ""),)),
    ],
    "fix-the-verifier": [
        Wrong("unchanged", "loads", "NULL", bpf=(("    if (!total)\n        return 0;\n", ""),)),
        Wrong("check-after-use", "loads", "NULL", bpf=(("    if (!total)\n        return 0;\n    // ### END SOLUTION\n    __sync_fetch_and_add(total, args->bytes_alloc);\n",
                                                      "    // ### END SOLUTION\n    __sync_fetch_and_add(total, args->bytes_alloc);\n    if (!total)\n        return 0;\n"),)),
        Wrong("removes-the-work", "fires", "does not remove the work", bpf=(("    __sync_fetch_and_add(total, args->bytes_alloc);\n", ""),)),
        Wrong("adds-one", "total", "counted allocations", bpf=(("__sync_fetch_and_add(total, args->bytes_alloc)", "__sync_fetch_and_add(total, 1)"),)),
        Wrong("bytes-req", "total", "bytes_req", bpf=(("__sync_fetch_and_add(total, args->bytes_alloc)", "__sync_fetch_and_add(total, args->bytes_req)"),)),
        Wrong("drops-the-filter", "only-target", "filter on target_pid", bpf=(("    if (pid != TARGET_PID)\n        return 0;\n", ""),)),
        Wrong("replaces", "total", "replaced instead of added", bpf=(("__sync_fetch_and_add(total, args->bytes_alloc);", "*total = args->bytes_alloc;"),)),
    ],
    # the learner writes the loader (Python with bcc): edits of load_and_poll()
    "write-the-loader": [
        Wrong("no-cleanup", "cleanup", "b.cleanup()", py=(("load_and_poll", 'with BPF(text=program, cflags=[f"-DTARGET_PID={target_pid}"]) as b:',
                                                          'b = BPF(text=program, cflags=[f"-DTARGET_PID={target_pid}"])\n    if True:'),)),
        Wrong("polls-once", "events|bounded", "until", py=(("load_and_poll", "        while time.monotonic() < deadline:\n            b.ring_buffer_poll(timeout=50)\n        b.ring_buffer_consume()\n",
                                                           "        b.ring_buffer_poll(timeout=50)\n"),)),
        Wrong("never-stops", "runs", "did not return", py=(("load_and_poll", "while time.monotonic() < deadline:", "while True:"),)),
        Wrong("wrong-function", "runs", "stopped with", py=(("load_and_poll", 'fn_name="on_kill"', 'fn_name="on_kil"'),)),
        Wrong("appends-twice", "events", "twice", py=(("load_and_poll", '        events.append({"target_pid": e.target_pid, "sig": e.sig})\n',
                                                      '        events.append({"target_pid": e.target_pid, "sig": e.sig})\n'
                                                      '        events.append({"target_pid": e.target_pid, "sig": e.sig})\n'),)),
        Wrong("tuples", "runs", "one dict per event", py=(("load_and_poll", 'events.append({"target_pid": e.target_pid, "sig": e.sig})',
                                                          "events.append((e.target_pid, e.sig))"),)),
    ],
}


#: Gamed answers: what passes a grader that can be second-guessed. Each must score below full marks,
#: caught at the named check (they join WRONG, so the same test grades them).
GAMED: Dict[str, List[Wrong]] = {
    "kmalloc-filter": [
        # the notebook once printed "192 bytes": a literal in place of the name passes at one value at most
        Wrong("hard-coded-threshold", "threshold", "not with a number",
              bpf=(("args->bytes_alloc < MIN_BYTES", "args->bytes_alloc < 192"),)),
        Wrong("hard-coded-big-threshold", "complete", "not with a number",
              bpf=(("args->bytes_alloc < MIN_BYTES", "args->bytes_alloc < 2048"),)),
    ],
    "tc-drop-big-icmp": [
        # the notebook once printed "here 400": which check catches a literal depends on the LIMIT drawn
        Wrong("hard-coded-limit", "small-pass|boundary", "draws it afresh",
              bpf=(("skb->len >= LIMIT", "skb->len >= 400"),)),
        Wrong("not-udp", "tcp-pass", "neither icmp nor udp",
              bpf=(("ip->protocol == IPPROTO_ICMP && skb->len >= LIMIT", "ip->protocol != IPPROTO_UDP && skb->len >= LIMIT"),)),
    ],
    "xdp-drop-big-icmp": [
        Wrong("not-udp", "tcp-pass", "neither icmp nor udp",
              bpf=(("ip->protocol == IPPROTO_ICMP && data_end - data >= LIMIT",
                    "ip->protocol != IPPROTO_UDP && data_end - data >= LIMIT"),)),
        Wrong("hard-coded-limit", "small-pass|boundary", "draws it afresh",
              bpf=(("data_end - data >= LIMIT", "data_end - data >= 400"),)),
    ],
    "xdp-then-tc": [
        # TC doing XDP's job: pass everything at XDP, drop the big pings at TC (the catalogue's drops-at-tc
        # moves the rule; this one keeps XDP's code but never lets it drop)
        Wrong("tc-does-xdps-job", "xdp-alone", "belongs to on_xdp", bpf=(
            ("        return XDP_DROP;", "        return XDP_PASS;"),
            ("        __sync_fetch_and_add(&s->bytes, skb->len);\n    }", "        __sync_fetch_and_add(&s->bytes, skb->len);\n    }\n"
             "    if (ip->protocol == IPPROTO_ICMP && skb->len >= LIMIT)\n        return TC_ACT_SHOT;"))),
    ],
}
for _eid, _gamed in GAMED.items():
    WRONG.setdefault(_eid, []).extend(_gamed)
