#ifndef EVENTS_H
#define EVENTS_H

/* Vendored device-event library: it runs its own worker threads and hands
 * every event to the application through a callback. */

/* Starts n worker threads; each delivers events through goDeliver. */
int ev_start(int n);

#endif
