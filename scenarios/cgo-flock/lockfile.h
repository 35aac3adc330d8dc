#ifndef LOCKFILE_H
#define LOCKFILE_H

/* Vendored advisory-lock helper shared with the C tools that touch the same
 * spool directory. */

/* Opens path and takes an exclusive flock(2) on it, waiting as long as it
 * takes. Returns the descriptor (keep it open while the lock is needed) or -1. */
int wait_lock(const char *path);

/* Releases a lock taken by wait_lock. */
void release_lock(int fd);

#endif
