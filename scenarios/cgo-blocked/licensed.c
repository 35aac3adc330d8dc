#include <string.h>
#include <unistd.h>
#include <errno.h>

#include "licensed.h"

int lic_check_feature(int fd, const char *feature) {
	(void)feature; /* the real library sends the request on another fd */
	unsigned char verdict;
	for (;;) {
		ssize_t n = read(fd, &verdict, 1);
		if (n == 1) {
			return verdict == 'Y' ? 1 : 0;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		return -1;
	}
}
