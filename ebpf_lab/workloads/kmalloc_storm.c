// SPDX-License-Identifier: GPL-2.0
// Workload of lesson 02 (kmalloc) and of `ebpf-lab bench ingest`: makes the
// kernel allocate memory, from a process whose name is "ebl-kmalloc".
//
//   kmalloc_storm ITERATIONS [wait]
//
// With "wait", it first reads one byte from standard input, so that a tracer
// can attach (knowing the pid) before the storm begins.
// Each iteration opens, reads and closes /proc/self/stat (a few small kmalloc
// calls in the kernel). It prints "iterations seconds" when done.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	char buf[512];
	struct timespec t0, t1;

	prctl(PR_SET_NAME, "ebl-kmalloc", 0, 0, 0);
	if (argc > 2 && argv[2][0] == 'w') {
		char go;
		if (read(0, &go, 1) != 1)
			return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int fd = open("/proc/self/stat", O_RDONLY);
		if (fd < 0)
			return 1;
		if (read(fd, buf, sizeof(buf)) < 0)
			return 1;
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%ld %.6f\n", n, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
