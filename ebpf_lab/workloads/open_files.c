// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03's kernel workload: a process named "ebl-opener" that calls
 * openat() on known paths, some of which fail, and prints each call's
 * arguments and the kernel's answer for the lesson to compare with what BPF
 * saw (one line per call; result is the fd, or -errno):
 *
 *     open <pid> <flags> <result> <path>
 *
 * It works in a fresh folder /tmp/ebl-trace-open-XXXXXX (printed first as
 * "dir <path>") holding readable.txt, secret.txt (mode 0600), a folder
 * subdir and a symlink link -> readable.txt, and removes it at the end.
 * Creating the two files (O_WRONLY|O_CREAT|O_TRUNC) is reported first.
 * Then each round opens, in this order:
 *   readable.txt          O_RDONLY                  -> an fd
 *   missing.txt           O_RDONLY                  -> -ENOENT
 *   subdir                O_WRONLY                  -> -EISDIR
 *   readable.txt/x        O_RDONLY                  -> -ENOTDIR
 *   new-R.txt             O_WRONLY|O_CREAT|O_EXCL   -> an fd
 *   new-R.txt             O_WRONLY|O_CREAT|O_EXCL   -> -EEXIST
 *   link                  O_RDONLY|O_NOFOLLOW       -> -ELOOP
 *   secret.txt            O_RDONLY, from a child process running as
 *                         nobody (uid 65534)        -> -EACCES (when root)
 *
 * Usage: open_files [rounds]   (default 1)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* openat(AT_FDCWD, dir/name, flags, mode), reported; returns the fd or -errno */
static int open_reported(const char *name, int flags, int mode)
{
	char path[256];
	path_of(path, sizeof(path), name);
	long fd = syscall(SYS_openat, AT_FDCWD, path, flags, mode);
	int result = fd >= 0 ? (int)fd : -errno;

	printf("open %d %d %d %s\n", (int)getpid(), flags, result, path);
	fflush(stdout);
	return result;
}

static int do_open(const char *name, int flags, int mode)
{
	int result = open_reported(name, flags, mode);

	if (result >= 0)
		close(result);
	return result;
}

static void must(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1;
	char path[256], target[256];

	prctl(PR_SET_NAME, "ebl-opener", 0, 0, 0);
	strcpy(dir, "/tmp/ebl-trace-open-XXXXXX");
	must(mkdtemp(dir) != NULL, "mkdtemp");
	must(chmod(dir, 0755) == 0, "chmod");  /* so that nobody may look inside */
	printf("dir %s\n", dir);

	/* set-up: these two openat() calls are reported too */
	int fd = open_reported("readable.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	must(fd >= 0 && write(fd, "hello\n", 6) == 6, "readable.txt");
	close(fd);
	fd = open_reported("secret.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	must(fd >= 0, "secret.txt");
	close(fd);
	path_of(path, sizeof(path), "subdir");
	must(mkdir(path, 0755) == 0, "subdir");
	path_of(path, sizeof(path), "link");
	path_of(target, sizeof(target), "readable.txt");
	must(symlink(target, path) == 0, "link");

	for (int r = 0; r < rounds; r++) {
		char name[32];

		do_open("readable.txt", O_RDONLY, 0);
		do_open("missing.txt", O_RDONLY, 0);
		do_open("subdir", O_WRONLY, 0);
		do_open("readable.txt/x", O_RDONLY, 0);
		snprintf(name, sizeof(name), "new-%d.txt", r);
		do_open(name, O_WRONLY | O_CREAT | O_EXCL, 0600);
		do_open(name, O_WRONLY | O_CREAT | O_EXCL, 0600);
		do_open("link", O_RDONLY | O_NOFOLLOW, 0);
		if (geteuid() == 0) {
			pid_t child = fork();
			must(child >= 0, "fork");
			if (child == 0) {
				if (setgid(65534) != 0 || setuid(65534) != 0)
					_exit(2);
				do_open("secret.txt", O_RDONLY, 0);
				_exit(0);
			}
			waitpid(child, NULL, 0);
		}
	}

	/* clean up the folder */
	for (int r = 0; r < rounds; r++) {
		char name[32];
		snprintf(name, sizeof(name), "new-%d.txt", r);
		path_of(path, sizeof(path), name);
		unlink(path);
	}
	const char *files[] = {"readable.txt", "secret.txt", "link"};
	for (unsigned i = 0; i < 3; i++) {
		path_of(path, sizeof(path), files[i]);
		unlink(path);
	}
	path_of(path, sizeof(path), "subdir");
	rmdir(path);
	rmdir(dir);
	return 0;
}
