"""``ebpf-lab``: the command line.

    ebpf-lab doctor [--json]
    ebpf-lab lessons [--files]
    ebpf-lab run LESSON [--seconds S] [--set NAME=VALUE]... [--no-workload] [--out FILE.csv|FILE.parquet]
    ebpf-lab cleanup
    ebpf-lab bench ingest [--events N] [--rounds N] [--load]
    ebpf-lab bench helpers [--events N] [--rounds N] [--load]
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, Callable, Dict, List, Optional

from .errors import LabError, LabParameterError

# Subcommands added by other modules: name -> (configure(parser), handler(args) -> exit code)
EXTRA_COMMANDS: Dict[str, Any] = {}


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through context managers: detaches


def cmd_doctor(args: argparse.Namespace) -> int:
    from .diagnose import doctor, format_table

    df = doctor()
    if args.json:
        print(json.dumps(df.to_dict(orient="records"), indent=2, default=str))
    else:
        print(format_table(df))
    return 0


def cmd_lessons(args: argparse.Namespace) -> int:
    from .catalog import lesson_files, lessons

    if args.files:
        files = lesson_files()
        for lid, rows in files.groupby("lesson", sort=False):
            print(lid)
            for r in rows.itertuples():
                print(f"  {r.kind:<18} {r.path}")
        return 0
    df = lessons()
    for row in df.itertuples():
        print(f"{row.id:<15} {row.title}\n{'':<15} notebook {row.notebook}; program {row.program}\n"
              f"{'':<15} parameters: {row.parameters}")
    return 0


def _parse_sets(sets: List[str]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for s in sets:
        name, eq, value = s.partition("=")
        if not eq or not name:
            raise LabParameterError(f"--set {s!r}: expected NAME=VALUE")
        out[name.strip().replace("-", "_")] = value.strip()
    return out


def write_frame(df: Any, out: str) -> str:
    """Write the DataFrame atomically (see ebpf_lab/output.py); returns the path written."""
    from .output import write_frame as _write

    return _write(df, out)


def cmd_run(args: argparse.Namespace) -> int:
    from .catalog import get_lesson

    if args.out:  # before anything is compiled or collected: a bad path must not cost the data
        from .output import check_out_path

        check_out_path(args.out)
    cls = get_lesson(args.lesson)
    lesson = cls(**_parse_sets(args.set))
    df = lesson.run(args.seconds, workload=not args.no_workload)
    print(summary(df))
    if args.out:
        path = write_frame(df, args.out)
        print(f"wrote {len(df):,} rows to {path}")
    return 0


def summary(df: Any) -> str:
    a = df.attrs
    lines = [f"lesson {a.get('lesson', '?')}: {len(df):,} rows, columns: {', '.join(map(str, df.columns))}"]
    if a.get("hooks"):
        lines.append(f"hook(s) used: {', '.join(a['hooks'])}")
    for note in a.get("hook_notes") or []:
        lines.append(f"note: {note}")
    if "lost" in a:
        lines.append(f"events lost: {'unknown (the counter could not be read)' if a['lost'] is None else a['lost']}")
    if a.get("workload"):
        lines.append(f"workload: {a['workload'].get('description')} (pid {a.get('workload_pid')})")
    if a.get("summary"):
        lines.append(str(a["summary"]))
    if len(df):
        with_pd_opts(lambda: lines.append(df.head(10).to_string()))
    return "\n".join(lines)


def with_pd_opts(fn: Callable[[], None]) -> None:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        fn()


def cmd_cleanup(args: argparse.Namespace) -> int:
    from . import _registry

    done = _registry.cleanup_dead(include_alive=args.all)
    try:
        from . import netlab  # noqa: F401  (network objects named ebl-*)

        done += netlab.cleanup_orphans()
    except ImportError:
        pass
    for d in done:
        print(f"removed {d}")
    print(f"cleanup: removed {len(done)} object(s)" if done else "cleanup: nothing of the lab was left behind")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ebpf-lab", description="ebpf-lab: an eBPF workbook on the running kernel")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("doctor", help="what this kernel and machine can do, with the fix for each missing piece")
    d.add_argument("--json", action="store_true", help="print JSON for machines")
    d.set_defaults(fn=cmd_doctor)
    ls = sub.add_parser("lessons", help="list the lessons")
    ls.add_argument("--files", action="store_true",
                    help="every place each lesson lives: module, notebook, programs, workloads, exercises, tests")
    ls.set_defaults(fn=cmd_lessons)
    r = sub.add_parser("run", help="run a lesson and write its DataFrame")
    r.add_argument("lesson", help="lesson id (see `ebpf-lab lessons`)")
    r.add_argument("--seconds", type=float, default=None, help="collect for this long (default: until the workload ends)")
    r.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a lesson parameter (repeatable)")
    r.add_argument("--no-workload", action="store_true", help="collect what the rest of the system does instead")
    r.add_argument("--out", help="write the DataFrame to FILE.csv or FILE.parquet")
    r.set_defaults(fn=cmd_run)
    c = sub.add_parser("cleanup", help="remove anything the lab attached or created, even after a crash")
    c.add_argument("--all", action="store_true", help="also what running lab processes own")
    c.set_defaults(fn=cmd_cleanup)
    b = sub.add_parser("bench", help="benchmarks that print figures")
    b.add_argument("what", choices=["ingest", "helpers"],
                   help="ingest: tracing a kmalloc storm, ebpf-lab vs plain bcc; "
                        "helpers: what each piece of a per-event program costs the kernel")
    b.add_argument("--events", type=int, default=500_000, help="storm size in events (default 500000)")
    b.add_argument("--rows", type=int, default=1_000_000, help="rows for the DataFrame memory figure")
    b.add_argument("--rounds", type=int, default=3, help="repeat every method this many times, interleaved (default 3)")
    b.add_argument("--load", action="store_true", help="run everything with a CPU hog pinned to the collector's CPU")
    b.add_argument("--e2e-rounds", type=int, default=3, help="end-to-end rounds (at most --rounds; default 3)")
    b.set_defaults(fn=cmd_bench)
    for name, (configure, handler) in EXTRA_COMMANDS.items():
        sp = sub.add_parser(name)
        configure(sp)
        sp.set_defaults(fn=handler)
    return p


def _load_extra_commands() -> None:
    for mod in ("ebpf_lab.grading", "ebpf_lab.classroom"):
        try:
            __import__(mod)
        except ImportError:
            pass


def main(argv: Optional[List[str]] = None) -> int:
    _load_extra_commands()
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        return int(args.fn(args) or 0)
    except LabError as e:
        print(f"ebpf-lab {args.cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ebpf-lab {args.cmd}: interrupted; everything the lab attached was removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
