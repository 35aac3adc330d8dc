#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "meter.h"
#include "_cgo_export.h"

static void *sampler(void *arg) {
	int id = (int)(intptr_t)arg;
	pthread_setname_np(pthread_self(), "meter-sampler");
	for (unsigned seq = 0;; seq++) {
		goReading(id, seq); /* the application decodes the reading */
		goPace(id);         /* and sets the pace of the next one */
		usleep(500);
	}
	return NULL;
}

int meter_start(int n) {
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, sampler, (void *)(intptr_t)i) != 0) {
			return -1;
		}
		pthread_detach(t);
	}
	return 0;
}
