#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "feed.h"

static volatile long resets;
static volatile long messages;

/* The vendor's crash reporter, installed when the library is loaded (before the
 * Go runtime starts, which then forwards faults in C code to it). */
static void feed_crash_report(int sig, siginfo_t *si, void *uctx) {
	(void)si;
	(void)uctx;
	static const char msg[] = "feedlib: fatal signal, see /var/log/feedlib\n";
	(void)write(2, msg, sizeof msg - 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

__attribute__((constructor)) static void feed_install_crash_reporter(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = feed_crash_report;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

/* Every entry point: keep SIGURG for the reader thread. */
static void keep_sigurg_for_reader(void) {
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGURG);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *urgent_reader(void *arg) {
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGURG);
	for (;;) {
		siginfo_t si;
		if (sigwaitinfo(&set, &si) == SIGURG) {
			resets++;
		}
	}
	return NULL;
}

int feed_init(void) {
	keep_sigurg_for_reader();
	pthread_t t;
	/* Created with SIGURG blocked: the mask is inherited. */
	if (pthread_create(&t, NULL, urgent_reader, NULL) != 0) {
		return -1;
	}
	pthread_detach(t);
	return 0;
}

int feed_attach(void) {
	keep_sigurg_for_reader();
	return (int)syscall(SYS_gettid);
}

long feed_stats(void) {
	keep_sigurg_for_reader();
	return messages + resets;
}
