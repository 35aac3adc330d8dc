#include <pthread.h>
#include <sched.h>

#include "ledger.h"

pthread_mutex_t ledger_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;

static long balance;
static long journal_len;
static int first_held;

/* Both callers hold their first lock before either goes for its second: the
 * lock-order inversion below then deadlocks every time, not just sometimes. */
static void wait_for_other(void) {
	__atomic_add_fetch(&first_held, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&first_held, __ATOMIC_SEQ_CST) < 2) {
		sched_yield();
	}
}

int ledger_first_locks_held(void) {
	return __atomic_load_n(&first_held, __ATOMIC_SEQ_CST);
}

void ledger_post(long amount) {
	pthread_mutex_lock(&ledger_lock);
	balance += amount;
	wait_for_other();
	pthread_mutex_lock(&journal_lock);
	journal_len++;
	pthread_mutex_unlock(&journal_lock);
	pthread_mutex_unlock(&ledger_lock);
}

void journal_rotate(void) {
	pthread_mutex_lock(&journal_lock);
	journal_len = 0;
	wait_for_other();
	pthread_mutex_lock(&ledger_lock);
	(void)balance;
	pthread_mutex_unlock(&ledger_lock);
	pthread_mutex_unlock(&journal_lock);
}
