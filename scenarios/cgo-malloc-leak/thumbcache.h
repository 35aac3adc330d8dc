#ifndef THUMBCACHE_H
#define THUMBCACHE_H

/* thumbcache: an in-process cache of rendered thumbnails (vendored C library).
 *
 * The cache keeps at most `capacity` thumbnails. Pixel buffers are owned by
 * the cache: callers must not free what tc_render returns. */

#include <stddef.h>

typedef struct tc_cache tc_cache;

/* Creates a cache holding at most capacity thumbnails. */
tc_cache *tc_open(size_t capacity);

/* Renders the w x h RGBA thumbnail of image id into a buffer owned by the
 * cache, replacing the oldest entry when the cache is full. Returns the
 * pixels, or NULL when out of memory. */
const unsigned char *tc_render(tc_cache *c, unsigned long id, int w, int h);

/* Bytes of pixel buffers the library has allocated and freed so far. */
void tc_stats(unsigned long long *allocated, unsigned long long *freed);

#endif
