#ifndef LICENSED_H
#define LICENSED_H

/* Minimal client for a (vendored) license daemon protocol. */

/* Sends a check request for feature on fd and waits for the one-byte verdict.
 * Returns 1 if licensed, 0 if refused, -1 on I/O error. Blocks until the
 * daemon answers: the vendor library has no timeout. */
int lic_check_feature(int fd, const char *feature);

#endif
