#ifndef GEOIP_H
#define GEOIP_H

/* Vendored geo-IP client. Looks the address up in the shared database
 * server; while the server is unreachable it backs off and retries, forever. */
int geo_lookup(const char *ip, char *country, int len);

#endif
