// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 01's workload: who sends kill?
 *
 * Starts two victim processes (named "ebl-victim"), then, named
 * "ebl-killer", signals them with several signals: 0 (does it exist?),
 * SIGUSR1 and SIGUSR2 (handled), an invalid signal number (EINVAL),
 * SIGSTOP/SIGCONT, SIGTERM and SIGKILL, and SIGTERM to a pid that cannot
 * exist (above the kernel's PID_MAX_LIMIT, so ESRCH). Each kill() is the raw
 * system call; for each one it prints what it sent and what the kernel
 * answered, one line per call, for the lesson to compare with what BPF saw:
 *
 *     kill <target pid> <signal> <result: 0 or -errno>
 *
 * Usage: kill_victims [pause_ms]   (pause between kills, default 20)
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

#define NO_SUCH_PID 99999999   /* > PID_MAX_LIMIT (4194304): never a process */
#define BAD_SIGNAL 99          /* > _NSIG (64): the kernel says EINVAL */

static int pause_ms = 20;

static void send(pid_t target, int sig)
{
	long r = syscall(SYS_kill, target, sig);
	int result = r == 0 ? 0 : -errno;

	printf("kill %d %d %d\n", (int)target, sig, result);
	fflush(stdout);
	usleep(pause_ms * 1000);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		pause_ms = atoi(argv[1]);
	pid_t a = spawn_victim("ebl-victim");
	pid_t b = spawn_victim("ebl-victim");

	prctl(PR_SET_NAME, "ebl-killer", 0, 0, 0);
	printf("victims %d %d\n", (int)a, (int)b);
	fflush(stdout);

	send(a, 0);            /* is it there?        -> 0 */
	send(a, SIGUSR1);      /* handled             -> 0 */
	send(a, SIGUSR2);      /* handled             -> 0 */
	send(a, BAD_SIGNAL);   /* no such signal      -> -EINVAL */
	send(b, SIGSTOP);      /* stopped             -> 0 */
	send(b, SIGCONT);      /* running again       -> 0 */
	send(a, SIGTERM);      /* terminated          -> 0 */
	send(b, SIGKILL);      /* killed              -> 0 */
	send(NO_SUCH_PID, SIGTERM);  /* nobody there  -> -ESRCH */

	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	return 0;
}
