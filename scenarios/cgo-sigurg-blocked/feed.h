#ifndef FEED_H
#define FEED_H

/* Vendored client of the exchange gateway's market-data feed (C, thread-affine).
 *
 * The gateway flags "book reset" events with TCP urgent (out-of-band) data, which
 * the kernel announces with SIGURG. The library consumes SIGURG synchronously on
 * its own reader thread (sigwaitinfo), and so that the signal goes there and
 * nowhere else, every entry point blocks SIGURG in the calling thread. It never
 * unblocks it: "your threads must not see SIGURG" (feed.h, vendor comment). */

/* Starts the library's urgent-data reader thread. */
int feed_init(void);

/* Binds the calling thread to the feed session; returns its thread id. */
int feed_attach(void);

/* Messages received so far. */
long feed_stats(void);

#endif
