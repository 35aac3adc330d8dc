#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "thumbcache.h"

struct tc_entry {
	unsigned long id;
	size_t len;
	unsigned char *pixels;
};

struct tc_cache {
	pthread_mutex_t mu;
	size_t capacity;
	size_t next; /* ring position of the oldest entry */
	size_t used;
	struct tc_entry *entries;
};

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long bytes_allocated, bytes_freed;

tc_cache *tc_open(size_t capacity) {
	tc_cache *c = calloc(1, sizeof *c);
	if (c == NULL) {
		return NULL;
	}
	c->entries = calloc(capacity, sizeof *c->entries);
	if (c->entries == NULL) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->capacity = capacity;
	return c;
}

const unsigned char *tc_render(tc_cache *c, unsigned long id, int w, int h) {
	size_t len = (size_t)w * (size_t)h * 4;
	unsigned char *px = malloc(len);
	if (px == NULL) {
		return NULL;
	}
	/* "Render": a gradient, so every page is written. */
	for (size_t i = 0; i < len; i += 4) {
		px[i] = (unsigned char)(id + i);
		px[i + 1] = (unsigned char)(i >> 8);
		px[i + 2] = (unsigned char)(i >> 16);
		px[i + 3] = 0xff;
	}
	pthread_mutex_lock(&stats_mu);
	bytes_allocated += len;
	pthread_mutex_unlock(&stats_mu);

	pthread_mutex_lock(&c->mu);
	struct tc_entry *e = &c->entries[c->next];
	if (c->used == c->capacity) {
		/* Evict the oldest entry. BUG: its pixels are never freed (and never
		 * counted as freed): the slot is simply overwritten. */
	} else {
		c->used++;
	}
	e->id = id;
	e->len = len;
	e->pixels = px;
	c->next = (c->next + 1) % c->capacity;
	pthread_mutex_unlock(&c->mu);
	return px;
}

void tc_stats(unsigned long long *allocated, unsigned long long *freed) {
	pthread_mutex_lock(&stats_mu);
	*allocated = bytes_allocated;
	*freed = bytes_freed;
	pthread_mutex_unlock(&stats_mu);
}
