#include <string.h>
#include <unistd.h>

#include "geoip.h"

static int db_reachable(void) {
	return 0; /* the database server is down */
}

int geo_lookup(const char *ip, char *country, int len) {
	(void)ip;
	unsigned backoff = 60;
	while (!db_reachable()) {
		sleep(backoff); /* no deadline, no cancellation */
		if (backoff < 3600) {
			backoff *= 2;
		}
	}
	strncpy(country, "??", len);
	return 0;
}
