#ifndef LEDGER_H
#define LEDGER_H

/* Vendored double-entry ledger with an append-only journal. Both are guarded
 * by their own pthread mutex. */

/* Posts an entry: locks the ledger, then the journal. */
void ledger_post(long amount);

/* Rotates the journal: locks the journal, then the ledger to checkpoint it. */
void journal_rotate(void);

/* How many calls hold their first lock (for the test harness). */
int ledger_first_locks_held(void);

#endif
