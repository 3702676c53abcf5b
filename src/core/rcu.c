#include "core/rcu.h"

#ifdef MG_TSAN
char mg_rcu_grace_token;
#else
/* Nothing to define outside ThreadSanitizer builds; keep the translation unit non-empty. */
typedef int mg_rcu_unused_t;
#endif
