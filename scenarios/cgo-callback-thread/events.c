#define _GNU_SOURCE
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

int ev_start(int n) {
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, ev_worker, (void *)(intptr_t)i) != 0) {
			return -1;
		}
		pthread_detach(t);
	}
	return 0;
}
