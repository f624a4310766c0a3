// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 06's workload: known kills from two known processes, and the truth
 * about who their parents are, read from /proc.
 *
 * The process (named "ebl-3w-sender") starts a victim ("ebl-3w-victim"), sends
 * it signal 0, SIGUSR1 and SIGUSR2, then forks a child ("ebl-3w-child") that
 * sends the victim SIGUSR1 itself; finally the sender sends SIGTERM. So there
 * are two senders with two different parents: the sender's parent is whoever
 * started the workload, the child's parent is the sender.
 *
 * Each sender reads its own pid and its parent's pid from /proc/self/stat
 * (field 4, "ppid": the kernel's task->real_parent->tgid) before it sends,
 * and prints what it sent and what the kernel answered, one line each:
 *
 *     proc <pid> <ppid from /proc> <comm>
 *     kill <sender pid> <target pid> <signal> <result: 0 or -errno>
 *
 * Usage: three_ways_kills [pause_ms]   (pause between kills, default 5)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "victim.h"  /* spawn_victim() */

static int pause_ms = 5;

/* This process's parent pid as /proc says it (field 4 of /proc/self/stat). */
static int proc_ppid(void)
{
	char buf[512];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;
	char *p;
	int ppid = -1;

	if (!f) {
		perror("/proc/self/stat");
		exit(1);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');  /* comm may hold spaces and parentheses */
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1) {
		fprintf(stderr, "cannot parse /proc/self/stat\n");
		exit(1);
	}
	return ppid;
}

static void record_self(const char *comm)
{
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	printf("proc %d %d %s\n", (int)getpid(), proc_ppid(), comm);
	fflush(stdout);
}

static void send(pid_t target, int sig)
{
	long r = syscall(SYS_kill, target, sig);
	int result = r == 0 ? 0 : -errno;

	printf("kill %d %d %d %d\n", (int)getpid(), (int)target, sig, result);
	fflush(stdout);
	usleep(pause_ms * 1000);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		pause_ms = atoi(argv[1]);
	record_self("ebl-3w-sender");
	pid_t victim = spawn_victim("ebl-3w-victim");
	printf("victim %d\n", (int)victim);
	fflush(stdout);

	send(victim, 0);        /* is it there? */
	send(victim, SIGUSR1);  /* handled */
	send(victim, SIGUSR2);  /* handled */

	fflush(stdout);
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		record_self("ebl-3w-child");
		send(victim, SIGUSR1);
		_exit(0);
	}
	waitpid(child, NULL, 0);

	send(victim, SIGTERM);  /* terminated */
	waitpid(victim, NULL, 0);
	return 0;
}
