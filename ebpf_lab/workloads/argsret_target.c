// SPDX-License-Identifier: GPL-2.0
/*
 * Lesson 03's user-space workload, for uprobes: a process named "ebl-argsret"
 * that calls libc's strtol() and its own ebl_collatz() with known arguments,
 * and prints each call's arguments and result for the lesson to compare
 * with what the uprobes saw:
 *
 *     strtol <base> <result> <text>
 *     ebl_collatz <n> <result> <label>
 *
 * Usage: argsret_target [rounds]   (default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

/* Kept a real, separately called function: never inlined, cloned or
 * constant-folded into main, so a uprobe on its symbol fires once per call. */
#ifdef __clang__
__attribute__((noinline, used))
#else
__attribute__((noinline, noclone, used))
#endif
long ebl_collatz(const char *label, long n)
{
	long steps = 0;

	__asm__ volatile("" ::"r"(label));
	while (n > 1) {
		n = (n & 1) ? 3 * n + 1 : n / 2;
		steps++;
	}
	return steps;  /* steps of the Collatz sequence from n down to 1 */
}

struct strtol_case {
	const char *text;
	int base;
};

static const struct strtol_case cases[] = {
	{"42", 10}, {"-17", 10}, {"0x1f", 16}, {"0755", 8}, {"zz", 36},
	{"12abc", 10}, {"abc", 10}, {"777", 0},
};

static volatile long ns[] = {1, 7, 27, 97, 871, 6171, 77031, 837799};

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 1;
	char label[32];

	prctl(PR_SET_NAME, "ebl-argsret", 0, 0, 0);
	for (int r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			long v = strtol(cases[i].text, NULL, cases[i].base);
			printf("strtol %d %ld %s\n", cases[i].base, v, cases[i].text);
		}
		for (unsigned i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
			long n = ns[i];
			snprintf(label, sizeof(label), "n=%ld", n);
			printf("ebl_collatz %ld %ld %s\n", n, ebl_collatz(label, n), label);
		}
	}
	return 0;
}
