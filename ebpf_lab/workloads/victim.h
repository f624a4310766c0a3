/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A victim for the kill() workloads (kill_victims.c, three_ways_kills.c).
 *
 * spawn_victim(comm) forks a child named comm that handles SIGUSR1 and SIGUSR2
 * (and ignores them), dies with its parent (PR_SET_PDEATHSIG), and otherwise
 * waits; it returns the child's pid once the handlers are in place, so that
 * no signal the caller sends afterwards can find the default action still set.
 * Exits the program (status 1) when the victim cannot be started.
 */
#ifndef EBL_VICTIM_H
#define EBL_VICTIM_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void on_victim_signal(int sig)
{
	(void)sig;
}

static pid_t spawn_victim(const char *comm)
{
	int fds[2];
	char c = 0;

	if (pipe(fds) != 0) {
		perror("pipe");
		exit(1);
	}
	fflush(stdout);  /* the child must not print the parent's buffered lines again */
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_victim_signal;
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGUSR2, &sa, NULL);
		prctl(PR_SET_NAME, comm, 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(fds[0]);
		if (write(fds[1], &c, 1) != 1)
			_exit(1);
		close(fds[1]);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1) {  /* wait until the handlers are in place */
		fprintf(stderr, "victim %d did not start\n", pid);
		exit(1);
	}
	close(fds[0]);
	return pid;
}

#endif /* EBL_VICTIM_H */
