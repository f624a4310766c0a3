"""Hints for a program that does not compile, load or verify, chosen from the line that names the error.

A compiler or verifier log is mostly context: clang quotes source lines, the
verifier prints every instruction with its register states (where words like
``map_value_or_null`` appear on the way to a quite different error). A hint is
chosen from the **error line** alone: clang's first ``error:`` line (or LLVM's
fatal error), and the verifier's closing message (the lines after the last
instruction, before its statistics). Hints are fixed text; a name taken from
the log is put in with ``str.replace``, never ``str.format`` (a learner's ``{``
must never be read as a format field).
"""
from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

#: (class, pattern on the error line, hint). ``{0}`` in a hint is the pattern's first group.
Rule = Tuple[str, str, str]

STACK_HINT = ("LLVM: BPF stack limit of 512 bytes is exceeded — keep large buffers in a per-CPU array map "
              "(BPF_PERCPU_ARRAY(buf, struct big_t, 1); then `u32 zero = 0; struct big_t *b = buf.lookup(&zero); "
              "if (!b) return 0;`) instead of a local variable.")
MAP_TOO_BIG_HINT = ("the kernel refused to create a map that large (\"Argument list too long\"): give it fewer "
                    "entries (thousands, not billions) or smaller keys and values.")
UNKNOWN_FUNCTION_HINT = ("'{0}' is not a function a BPF program can call: BPF code calls only BPF helpers "
                         "(bpf_...) and functions defined in the program. Check its spelling.")

COMPILE_RULES: List[Rule] = [
    ("stack-limit", r"stack limit of 512 bytes|Looks like the BPF stack limit", STACK_HINT),
    ("map-too-big", r"could not open bpf map.*(Argument list too long|E2BIG)", MAP_TOO_BIG_HINT),
    ("map-invalid", r"could not open bpf map: (\w+), error: Invalid argument",
     "the kernel refused to create the map '{0}' as declared (\"Invalid argument\"): a ring buffer's size "
     "(BPF_RINGBUF_OUTPUT(name, pages)) must be a power of two, e.g. 1 << 6; other maps need at least one entry."),
    ("map-refused", r"could not open bpf map: (\w+)",
     "the kernel refused to create the map '{0}': check its type, key and value sizes and number of entries."),
    ("builtin-copy", r"built-in function '(memset|memcpy|memmove)' is not supported",
     "a large array or struct is cleared or copied in one go ({0}), which BPF cannot do for big buffers: keep "
     "large buffers in a per-CPU array map (BPF_PERCPU_ARRAY) and work on them through a pointer from lookup()."),
    ("unterminated-comment", r"unterminated /\* comment",
     "a comment opened with /* is never closed: end it with */."),
    ("unterminated-string", r"missing terminating|unterminated string",
     "a string or character literal is not closed: every \" needs its partner on the same line."),
    ("include", r"'([^']+)' file not found",
     "'{0}' cannot be included here: BPF programs are built against kernel headers, not the C library's; "
     "remove that #include (bcc already gives you the kernel types and helpers)."),
    ("undeclared", r"use of undeclared identifier '(\w+)'",
     "'{0}' is not declared where you use it: check its spelling, and declare variables and maps before "
     "the code that uses them."),
    ("unknown-function", r"implicit declaration of function '(\w+)'", UNKNOWN_FUNCTION_HINT),
    ("unknown-type", r"unknown type name '(\w+)'",
     "'{0}' is not a type here: check its spelling (kernel types are u8/u16/u32/u64, s32, ...), or define "
     "the struct before using it."),
    ("no-member", r"no member named '(\w+)'",
     "the struct has no field '{0}': look at the struct's definition (or the tracepoint's format file) for "
     "the right name."),
    ("semicolon", r"expected ';'", "a semicolon is missing at the end of a statement (clang points just after it)."),
    ("bracket", r"expected '\}'|expected '\)'|expected '\]'|extraneous closing brace|function definition is not allowed here"
                r"|expected expression|expected identifier or '\('|expected statement",
     "a bracket is not closed (or closed once too often): count the ( ) and { } around the line clang names, "
     "and the lines above it."),
    ("redefinition", r"redefinition of '(\w+)'", "'{0}' is defined twice: keep one definition, or rename one."),
    ("arguments", r"too (many|few) arguments",
     "a function is called with the wrong number of arguments: compare the call with its definition."),
    ("types", r"incompatible|cannot convert|invalid operands|is not assignable|cannot be assigned",
     "two types do not fit together there: look at what each side of the expression is."),
]

VERIFIER_RULES: List[Rule] = [
    ("unreleased-reference", r"Unreleased reference|reference leak",
     "memory reserved with ringbuf_reserve() must be given back on every path: ringbuf_submit() or "
     "ringbuf_discard() before each return."),
    ("null", r"_or_null",
     "a pointer that may be NULL is used without a check: test the result of lookup(), "
     "lookup_or_try_init() or ringbuf_reserve() with `if (!p) return 0;` before using it."),
    ("packet-bounds", r"invalid access to packet|offset is outside of the packet",
     "the program reads a packet header without proving it lies before data_end: check "
     "`if ((void *)(ip + 1) > data_end) return ...;` before reading ip->... (the same for every header)."),
    ("loop", r"back-edge|infinite loop|loop is not bounded|BPF program is too large|too many instructions"
             r"|jumps is too complex",
     "the verifier must see every loop end within its limit of instructions: give loops a small constant "
     "upper bound (for (int i = 0; i < 16; i++)) and no way to go round forever."),
    ("uninitialised-stack", r"invalid indirect read from stack|invalid read from stack|invalid indirect access to stack",
     "a helper reads stack memory you never wrote: initialise structs and keys first (`struct key_t key = {};`)."),
    ("uninitialised-register", r"!read_ok",
     "a variable is read before it is given a value on some path: initialise it where you declare it."),
    ("stack-limit", r"combined stack size|stack limit|invalid stack off", STACK_HINT),
    ("helper", r"unknown func (\w+)|program of this type cannot use helper (\w+)|helper call is not allowed"
               r"|cannot call GPL-restricted function",
     "this hook's programs may not call that helper ({0}): remove the call, or use one this program type allows."),
    ("unknown-function", r"jump out of range|call to invalid destination|invalid func",
     "the program calls something that is not a BPF helper (look for a warning 'implicit declaration of "
     "function' when it compiled): check the spelling of every bpf_... call."),
    ("context-write", r"invalid bpf_context access|cannot write into (ctx|context)",
     "the hook's arguments (args, ctx, skb) are read-only here: copy the value into a variable of your own "
     "and change that."),
    ("direct-read", r"invalid mem access|invalid access to",
     "the program reads memory it may not read directly: use bpf_probe_read_kernel() / bpf_probe_read_user()."),
    ("map-too-big", r"Argument list too long|E2BIG", MAP_TOO_BIG_HINT),
]

COMPILE_DEFAULT = "read the first error: clang names the line and column of your program where it stopped."
VERIFIER_DEFAULT = ("the last lines of the verifier's log name the instruction it refused; the line above it "
                    "says why.")

_INSN = re.compile(r"^\s*\d+: \(|^\s*;|^\s*from \d+ to \d+:|^\s*\d+: R\d|^\s*R\d+[_=]|^\s*\d+:\s*$|^\s*\.\.\.")
_STATS = re.compile(r"^(processed \d+ insns|verification time|stack depth|max_states_per_insn|bpf: Failed to load"
                    r"|libbpf:|Caller passes invalid args|Func#|last_idx|regs=|parent didn't have)")


def fill(hint: str, groups: Sequence[Optional[str]]) -> str:
    """The hint with ``{0}`` replaced by the first non-empty group: plain replacement, no formatting."""
    value = next((g for g in groups if g), "")
    return hint.replace("{0}", value) if value else hint.replace(" ({0})", "").replace("'{0}' ", "").replace("{0}", "it")


def compile_error_line(log: str) -> str:
    """The line of a clang/LLVM/bcc log that names the (first) error."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for key in (r"LLVM ERROR|stack limit of 512", r"\berror:", r"fatal error", r"could not open bpf map", r"Assertion"):
        for ln in lines:
            if re.search(key, ln):
                return ln
    return ""


def compile_warnings(log: str) -> List[str]:
    return [ln.strip() for ln in log.splitlines() if "warning:" in ln]


def verifier_error_lines(log: str) -> List[str]:
    """The verifier's closing message: the lines after its last instruction and register dump, without statistics."""
    lines = [ln.rstrip() for ln in log.splitlines() if ln.strip()]
    while lines and _STATS.match(lines[-1].strip()):
        lines.pop()
    block: List[str] = []
    for ln in reversed(lines):
        if _INSN.match(ln):
            break
        if not _STATS.match(ln.strip()):
            block.append(ln.strip())
    return list(reversed(block))[-4:]


def match(rules: Sequence[Rule], text: str) -> Optional[Tuple[str, str]]:
    """(class, hint) of the first rule whose pattern is in ``text``."""
    for kind, rx, hint in rules:
        m = re.search(rx, text)
        if m:
            return kind, fill(hint, m.groups())
    return None


def compile_hint(log: str) -> Tuple[str, str]:
    """(class, hint) for a program clang (or LLVM, or bcc) refused."""
    line = compile_error_line(log)
    errors = [ln for ln in log.splitlines() if "error:" in ln]
    before = log.split(line, 1)[0] if line else log
    if re.search(r"warning: (missing terminating|unterminated)", before):
        return match(COMPILE_RULES, "missing terminating") or ("other", COMPILE_DEFAULT)  # clang warns, then errs
    if "unknown type name" in line and len(errors) > 1 and "expected identifier or '('" in errors[1]:
        # statements at file scope: a '}' too many closed the function early
        return match(COMPILE_RULES, "extraneous closing brace") or ("other", COMPILE_DEFAULT)
    return match(COMPILE_RULES, line) or ("other", COMPILE_DEFAULT)


def verifier_hint(log: str, compile_log: str = "", error: str = "") -> Tuple[str, str]:
    """(class, hint) for a program the kernel refused; ``compile_log`` adds clang's warnings (unknown helpers)."""
    block = verifier_error_lines(log)
    found = None
    for line in block:  # the first line of the closing message that names a class wins (not a state dump after it)
        found = match(VERIFIER_RULES, line)
        if found:
            break
    if found is None or found[0] == "unknown-function":
        for w in compile_warnings(compile_log):
            m = re.search(r"implicit declaration of function '(\w+)'", w)
            if m:
                return "unknown-function", fill(UNKNOWN_FUNCTION_HINT, m.groups())
    if found is None and error:
        found = match(VERIFIER_RULES, error)
    return found or ("other", VERIFIER_DEFAULT)


def crash_hint(log: str) -> Tuple[str, str]:
    """(class, hint) for a compiler that ended the process: LLVM's fatal error, or bcc's assertion."""
    line = compile_error_line(log)
    found = match(COMPILE_RULES, line)
    if found:
        return found
    return ("crash", "the compiler stopped on something it could not handle: look at the line it names, "
                     "or undo your last change and make it again in smaller steps.")
