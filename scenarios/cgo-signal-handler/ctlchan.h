#ifndef CTLCHAN_H
#define CTLCHAN_H

/* Vendored client of a device's control channel (C, thread-affine: the session
 * lives in thread-local state).
 *
 * The device interrupts a running transfer by sending TCP urgent (out-of-band)
 * data, which the kernel announces with SIGURG to the socket's owner. At open,
 * the library claims the socket (F_SETOWN) and installs its own SIGURG handler
 * with sigaction; the handler only counts the event for the transfer loop to
 * notice. It does not keep or call the handler that was there before. */

/* Opens the control session; installs the library's SIGURG handler. 0 on success. */
int ctl_open(void);

/* Urgent events the library's handler has counted for the calling thread's session. */
long ctl_urgent_events(void);

#endif
