// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 06 — the libbpf way's user-space half: a small loader in the
 * libbpf-bootstrap style (open, load, attach through a skeleton made by
 * `bpftool gen skeleton three_ways_core.bpf.o name three_ways_core`).
 *
 * Hook: tracepoint syscalls:sys_enter_kill (the program in three_ways_core.bpf.c).
 * Needs: the running kernel's BTF (libbpf relocates the program's field reads
 * against /sys/kernel/btf/vmlinux), BPF ring buffers (5.8+), libbpf.
 *
 * Standard output: one JSON object per line, flushed at once:
 *   {"type":"ready","prog_id":N,"libbpf":"1.1"}  after attaching
 *   {"type":"event","ts_ns":..,"sender_pid":..,"sender_comm":"..","parent_pid":..,"target_pid":..,"signal":..}
 *   {"type":"done","events":N}                     on exit
 * Standard error: libbpf's log; with -v its debug log, which lists each CO-RE
 * relocation it applied ("CO-RE relocating [..] struct task_struct: found
 * target candidate ..." and the patched instructions).
 *
 * Bounded: exits after -d SECONDS (default 30), on SIGINT/SIGTERM, and with
 * -w when its standard input closes (so it never outlives the process that
 * started it through a pipe).
 *
 * Usage: three_ways_loader [-v] [-w] [-d SECONDS]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "three_ways_core.h"
#include "three_ways_core.skel.h"

static volatile sig_atomic_t exiting;
static int verbose, watch_stdin;
static long events_seen;

static void on_stop(int sig)
{
	(void)sig;
	exiting = 1;
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* comm as a JSON string: quotes, backslashes and control characters escaped */
static void print_json_string(const char *s, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct event *e = data;

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	events_seen++;
	printf("{\"type\":\"event\",\"ts_ns\":%llu,\"sender_pid\":%u,\"sender_comm\":",
	       (unsigned long long)e->ts_ns, e->sender_pid);
	print_json_string(e->sender_comm, sizeof(e->sender_comm));
	printf(",\"parent_pid\":%u,\"target_pid\":%d,\"signal\":%d}\n", e->parent_pid, e->target_pid, e->sig);
	fflush(stdout);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct three_ways_core *skel = NULL;
	struct ring_buffer *rb = NULL;
	struct bpf_prog_info info = {};
	__u32 info_len = sizeof(info);
	double seconds = 30, deadline;
	int opt, err = 0;

	while ((opt = getopt(argc, argv, "vwd:")) != -1) {
		if (opt == 'v')
			verbose = 1;
		else if (opt == 'w')
			watch_stdin = 1;
		else if (opt == 'd')
			seconds = atof(optarg);
		else {
			fprintf(stderr, "usage: %s [-v] [-w] [-d SECONDS]\n", argv[0]);
			return 2;
		}
	}
	if (!(seconds > 0 && seconds <= 3600)) {
		fprintf(stderr, "three_ways_loader: -d %s: seconds must be in (0, 3600]\n", argv[optind - 1]);
		return 2;
	}
	libbpf_set_print(print_libbpf);
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, on_stop);

	/* open: parse the embedded object (its BTF and CO-RE relocations) */
	skel = three_ways_core__open();
	if (!skel) {
		fprintf(stderr, "three_ways_loader: opening the BPF object failed: %s\n", strerror(errno));
		return 1;
	}
	/* load: libbpf relocates field offsets against the running kernel's BTF, then the verifier checks */
	err = three_ways_core__load(skel);
	if (err) {
		fprintf(stderr, "three_ways_loader: loading the BPF object failed: %s\n", strerror(-err));
		goto out;
	}
	/* attach: the tracepoint syscalls:sys_enter_kill */
	err = three_ways_core__attach(skel);
	if (err) {
		fprintf(stderr, "three_ways_loader: attaching to syscalls:sys_enter_kill failed: %s\n", strerror(-err));
		goto out;
	}
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_event, NULL, NULL);
	if (!rb) {
		err = -errno;
		fprintf(stderr, "three_ways_loader: opening the ring buffer failed: %s\n", strerror(errno));
		goto out;
	}
	bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.on_kill_entry), &info, &info_len);
	printf("{\"type\":\"ready\",\"prog_id\":%u,\"libbpf\":\"%u.%u\"}\n", info.id,
	       libbpf_major_version(), libbpf_minor_version());
	fflush(stdout);

	deadline = now_s() + seconds;
	while (!exiting && now_s() < deadline) {
		struct pollfd in = {.fd = 0, .events = POLLIN};

		err = ring_buffer__poll(rb, 50 /* ms */);
		if (err == -EINTR) {
			err = 0;
			break;
		}
		if (err < 0) {
			fprintf(stderr, "three_ways_loader: polling the ring buffer failed: %s\n", strerror(-err));
			break;
		}
		err = 0;
		/* -w: the starter went away (its end of our stdin closed): stop */
		if (watch_stdin && poll(&in, 1, 0) == 1) {
			char c;
			if ((in.revents & (POLLHUP | POLLERR | POLLNVAL)) || read(0, &c, 1) <= 0)
				break;
		}
	}
	ring_buffer__consume(rb);  /* what arrived after the last poll */
	printf("{\"type\":\"done\",\"events\":%ld}\n", events_seen);
	fflush(stdout);
out:
	ring_buffer__free(rb);
	three_ways_core__destroy(skel);
	return err ? 1 : 0;
}
