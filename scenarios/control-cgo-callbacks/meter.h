#ifndef METER_H
#define METER_H

/* Vendored metering library: its sampler threads read the meters and hand
 * every reading to the application through callbacks. */

/* Starts n sampler threads; each calls goReading, then goPace. */
int meter_start(int n);

#endif
