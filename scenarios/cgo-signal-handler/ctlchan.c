#include <signal.h>
#include <string.h>

#include "ctlchan.h"

/* Per session, and a session lives on one thread. */
static __thread volatile sig_atomic_t urgent_events;

static void on_urgent(int sig, siginfo_t *info, void *uctx) {
	(void)sig;
	(void)info;
	(void)uctx;
	urgent_events++;
}

int ctl_open(void) {
	/* The real library also connects and calls fcntl(fd, F_SETOWN, getpid()). */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_urgent;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGURG, &sa, NULL);
}

long ctl_urgent_events(void) {
	return urgent_events;
}
