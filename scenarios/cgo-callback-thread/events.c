#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "events.h"
#include "_cgo_export.h"

static void *ev_worker(void *arg) {
	int id = (int)(intptr_t)arg;
	pthread_setname_np(pthread_self(), "ev-worker");
	for (int seq = 0;; seq++) {
		usleep(1000); /* wait for the device */
		goDeliver(id, seq); /* blocks while the application is busy */
	}
	return NULL;
}

/* The library's housekeeping thread: waits for device hot-plug notices on
 * its own pipe. It never calls into Go. */
static int hotplug[2];

static void *ev_housekeeping(void *arg) {
	(void)arg;
	pthread_setname_np(pthread_self(), "ev-hotplug");
	struct pollfd p = {.fd = hotplug[0], .events = POLLIN};
	for (;;) {
		poll(&p, 1, -1);
	}
	return NULL;
}

int ev_start(int n) {
	pthread_t h;
	if (pipe(hotplug) != 0 || pthread_create(&h, NULL, ev_housekeeping, NULL) != 0) {
		return -1;
	}
	pthread_detach(h);
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, ev_worker, (void *)(intptr_t)i) != 0) {
			return -1;
		}
		pthread_detach(t);
	}
	return 0;
}
