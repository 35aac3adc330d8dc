#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "feed.h"

static volatile long resets;
static volatile long messages;

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
