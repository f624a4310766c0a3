"""Learner mistakes in the C part of the exercises: a corpus of mutants of the reference solutions.

Each mutant is one kind of mistake a learner makes while typing (a deleted line,
a missing brace, an unterminated comment, an endless loop, a 4 KiB stack array,
a 2^31-entry map, a misspelt name handed to a map method, a helper the hook may
not call, text that is not text, ...). Each must give a report whose first
failed check is ``check`` and whose message or hint holds ``words`` (the hint of
its class), with no traceback, nothing left running and nothing left in the
kernel. All fail at "compiles" or "loads", so grading stops there: the corpus
is quick (one compile in a child process, one in the grader, per mutant).

An edit whose ``old`` text is not in the reference fails the test, so a
reworded solution cannot silently turn a mutant into something else.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, List, Optional, Tuple

K, M, O, T = "kill-to-pid", "kmalloc-filter", "openat-failures", "tc-drop-big-icmp"

# the hint words of each class (see ebpf_lab/exercises/_hints.py)
SEMICOLON = "semicolon"
BRACKET = "bracket is not closed"
COMMENT = "comment opened with /*"
STRING = "every \" needs its partner"
INCLUDE = "cannot be included here"
UNDECLARED = "is not declared where you use it"
UNKNOWN_FN = "is not a function a bpf program can call"
UNKNOWN_TYPE = "is not a type here"
NO_MEMBER = "has no field"
TWICE = "is defined twice"
ARGS = "wrong number of arguments"
TYPES = "do not fit together"
STACK = "per-cpu array map"
MAP_BIG = "argument list too long"
MAP_REFUSED = "refused to create the map"
UNRELEASED = "ringbuf_submit() or ringbuf_discard()"
NULL = "may be null"
PACKET = "data_end"
LOOP = "every loop end"
HELPER = "may not call that helper"
CTX = "read-only"
FORBIDDEN = "does not run programs"
NAME_KEPT = "keep the function's name"
EMPTY = "no bpf program was found"
NOT_TEXT = "not text"


@dataclasses.dataclass
class Mistake:
    name: str
    exercise: str
    check: str  # the first check that must fail ("compiles" or "loads")
    words: str  # in that check's message or hint (case-insensitive)
    edits: Tuple[Tuple[str, str], ...] = ()  # (old, new) on the reference PROGRAM, each old must be there
    whole: Optional[Callable[[str], str]] = None  # or a function of the whole PROGRAM
    crash: bool = False  # crashes bcc or LLVM when compiled in-process (the grader must survive it)


def _r(old: str, new: str) -> Tuple[Tuple[str, str], ...]:
    return ((old, new),)


MB_STRING = "x" * (1 << 20)

MISTAKES: List[Mistake] = [
    # ---------------------------------------------------------------- syntax
    Mistake("missing-semicolon", K, "compiles", SEMICOLON, _r("e->sig = sig;", "e->sig = sig")),
    Mistake("missing-closing-brace", K, "compiles", BRACKET,
            _r("    // ### END SOLUTION\n    return 0;\n}\n", "    // ### END SOLUTION\n    return 0;\n")),
    Mistake("extra-closing-brace", K, "compiles", BRACKET,
            _r("        return 0;\n    e->sender_pid", "        return 0;\n    }\n    e->sender_pid")),
    Mistake("unclosed-parenthesis", K, "compiles", BRACKET,
            _r("if (target_pid != TARGET_PID)", "if ((target_pid != TARGET_PID)")),
    Mistake("unclosed-if-brace", K, "compiles", BRACKET,
            _r("    if (target_pid != TARGET_PID)\n", "    if (target_pid != TARGET_PID) {\n")),
    Mistake("unterminated-comment", K, "compiles", COMMENT, whole=lambda s: s + "\n/* TODO: finish this\n"),
    Mistake("comment-swallows-code", K, "compiles", NO_MEMBER,
            _r("/* process that called kill() */", "/* process that called kill() ")),
    Mistake("unterminated-string", K, "compiles", STRING,
            _r("    e->sig = sig;\n", "    e->sig = sig;\n    char c = 'a;\n")),
    Mistake("semicolon-after-struct", M, "compiles", SEMICOLON,
            _r("    char comm[16];    /* process name */\n};", "    char comm[16];    /* process name */\n}")),
    # ---------------------------------------------------------------- names
    Mistake("undeclared-variable", K, "compiles", UNDECLARED, _r("e->sig = sig;", "e->sig = sgi;")),
    Mistake("misspelt-map-argument", K, "compiles", UNDECLARED,
            _r("events.ringbuf_submit(e, 0)", "events.ringbuf_submit(ev, 0)"), crash=True),
    Mistake("deleted-reserve-line", K, "compiles", UNDECLARED,
            _r("    struct kill_event *e = events.ringbuf_reserve(sizeof(struct kill_event));\n", "")),
    Mistake("misspelt-map-method-argument", O, "compiles", UNDECLARED,
            _r("inflight.update(&tid, &p);", "inflight.update(&tid, &q);")),
    Mistake("misspelt-parameter", M, "compiles", UNDECLARED,
            _r("args->bytes_alloc < MIN_BYTES", "args->bytes_alloc < MIN_BYTE")),
    Mistake("deleted-declaration", O, "compiles", UNDECLARED, _r("    u32 tid = (u32)id;\n", "")),
    Mistake("misspelt-map", M, "compiles", UNDECLARED,
            _r("events.ringbuf_submit(e, 0);", "event.ringbuf_submit(e, 0);")),
    Mistake("no-such-field", K, "compiles", NO_MEMBER, _r("&e->comm, sizeof(e->comm)", "&e->command, sizeof(e->command)")),
    Mistake("no-such-tracepoint-field", M, "compiles", NO_MEMBER,
            _r("args->bytes_alloc < MIN_BYTES", "args->size < MIN_BYTES")),
    Mistake("deleted-struct-field", M, "compiles", NO_MEMBER, _r("    char comm[16];    /* process name */\n", "")),
    Mistake("unknown-type", K, "compiles", UNKNOWN_TYPE, _r("    u32 sender_pid;", "    uint32 sender_pid;")),
    Mistake("map-defined-twice", K, "compiles", TWICE,
            _r("BPF_RINGBUF_OUTPUT(events, 1 << 6);", "BPF_RINGBUF_OUTPUT(events, 1 << 6);\nBPF_RINGBUF_OUTPUT(events, 1 << 6);")),
    Mistake("helper-too-few-arguments", K, "compiles", ARGS,
            _r("bpf_get_current_comm(&e->comm, sizeof(e->comm));", "bpf_get_current_comm(&e->comm);")),
    Mistake("assign-to-array", M, "compiles", TYPES, _r("e->pid = pid;", "e->pid = pid;\n    e->comm = pid;")),
    Mistake("include-system-header", K, "compiles", INCLUDE,
            _r("#include <uapi/linux/ptrace.h>\n", "#include <uapi/linux/ptrace.h>\n#include <stdio.h>\n")),
    Mistake("renamed-hook-function", K, "compiles", NAME_KEPT,
            _r("int on_kill_entry(struct tracepoint__syscalls__sys_enter_kill *args)",
               "int on_kill_enter(struct tracepoint__syscalls__sys_enter_kill *args)")),
    # ---------------------------------------------------------------- text
    Mistake("empty-program", K, "compiles", EMPTY, whole=lambda s: "   \n"),
    Mistake("lone-surrogate", K, "compiles", NOT_TEXT, _r("e->sig = sig;", "e->sig = sig; // \ud800")),
    Mistake("nul-character", M, "compiles", "NUL", _r("e->pid = pid;", "e->pid = pid;\0")),
    # ---------------------------------------------------------------- size
    Mistake("stack-array-4k", K, "compiles", STACK,
            _r("    if (target_pid != TARGET_PID)\n",
               "    char big[4096];\n    bpf_probe_read_kernel(big, sizeof(big), (void *)0);\n"
               "    if (big[7] == 3)\n        return 1;\n    if (target_pid != TARGET_PID)\n"), crash=True),
    Mistake("stack-struct-4k", O, "compiles", STACK,
            _r("struct pending {\n    char filename[64];", "struct pending {\n    char filename[4096];"), crash=True),
    Mistake("string-1mb", M, "compiles", STACK,
            _r("    e->pid = pid;\n",
               f"    char note[] = \"{MB_STRING}\";\n    bpf_probe_read_kernel(&e->comm, sizeof(e->comm), note);\n"
               "    e->pid = pid;\n"), crash=True),
    Mistake("map-2-31-entries", K, "loads", MAP_BIG,
            _r("BPF_RINGBUF_OUTPUT(events, 1 << 6);",
               "BPF_RINGBUF_OUTPUT(events, 1 << 6);\nBPF_HASH(huge, u32, u64, 2147483648);")),
    Mistake("ringbuf-not-power-of-two", M, "loads", MAP_REFUSED,
            _r("BPF_RINGBUF_OUTPUT(events, 1 << 8);", "BPF_RINGBUF_OUTPUT(events, 3);")),
    # ---------------------------------------------------------------- helpers
    Mistake("misspelt-helper", K, "loads", UNKNOWN_FN,
            _r("e->sender_pid = bpf_get_current_pid_tgid() >> 32;", "e->sender_pid = bpf_get_current_pid_tgd() >> 32;")),
    Mistake("made-up-helper", M, "loads", UNKNOWN_FN,
            _r("    e->pid = pid;\n", "    e->pid = pid;\n    bpf_print_event(e);\n")),
    Mistake("forbidden-helper", K, "compiles", FORBIDDEN,
            _r("    e->sig = sig;\n", "    e->sig = sig;\n    bpf_probe_write_user((void *)0, &sig, sizeof(sig));\n")),
    Mistake("helper-of-another-hook", M, "loads", HELPER,
            _r("    e->pid = pid;\n", "    e->pid = pid;\n    bpf_skb_store_bytes((void *)args, 0, &pid, 4, 0);\n")),
    # ---------------------------------------------------------------- verifier
    Mistake("reserve-without-submit", K, "loads", UNRELEASED, _r("    events.ringbuf_submit(e, 0);\n", "")),
    Mistake("submit-only-on-one-path", M, "loads", UNRELEASED,
            _r("    events.ringbuf_submit(e, 0);\n", "    if (e->bytes_req > 64)\n        events.ringbuf_submit(e, 0);\n")),
    Mistake("no-null-check-ringbuf", K, "loads", NULL, _r("    if (!e)\n        return 0;\n", "")),
    Mistake("no-null-check-lookup", O, "loads", NULL,
            _r("    if (!p)\n        return 0;\n    if (ret < 0)", "    if (ret < 0)")),
    Mistake("endless-loop", K, "loads", LOOP,
            _r("    e->sig = sig;\n", "    e->sig = sig;\n    for (;;)\n        e->sig += bpf_get_prandom_u32() & 1;\n")),
    Mistake("write-to-tracepoint-args", M, "loads", CTX,
            _r("    e->pid = pid;\n", "    e->pid = pid;\n    args->bytes_alloc = 0;\n")),
    Mistake("no-bounds-check-short", T, "loads", PACKET,
            _r("    if ((void *)(ip + 1) > data_end)\n", "    if ((void *)ip > data_end)\n")),
    Mistake("no-such-skb-field", T, "compiles", NO_MEMBER, _r("skb->len >= LIMIT", "skb->length >= LIMIT")),
]
