/* Enum <-> name tables: the one mechanism by which an enum with a string form (PE method,
 * adapter placement, activation, head kind, ...) is written to and read from config files,
 * checkpoints, command lines and messages. Each enum keeps exactly one table, defined
 * beside its declaration; its entries are in the order messages list them, so the enum's
 * numeric values (stored in test fixtures) and its listing order stay independent. Pure C. */
#ifndef PEP_NAMES_H
#define PEP_NAMES_H

#include <stddef.h>

struct pep_name {
    int value;
    const char *name;
};

struct pep_names {
    const char *what;             /* "PE method": for messages */
    const struct pep_name *entry; /* listing order */
    int count;
};

/* The name of `value`, or "?" if the table has none. */
const char *pep_names_name(const struct pep_names *t, int value);
/* *value = the entry named `name`: 0, or -1 if none is (nothing recorded: the caller says
 * where the name came from and lists the choices with pep_names_list). */
int pep_names_parse(const struct pep_names *t, const char *name, int *value);
/* The names in listing order into buf (truncated to fit), joined by `sep` and the last two
 * by `last_sep`: ("|", "|") gives "a|b|c", (", ", " or ") gives "a, b or c". */
void pep_names_list(const struct pep_names *t, const char *sep, const char *last_sep, char *buf, size_t len);

/* The typed pair an enum's header declares beside its table `<prefix>_names`:
 *   const char *<prefix>_name(type v)                   pep_names_name on the table
 *   int <prefix>_parse(const char *name, type *out)     pep_names_parse (0, or -1) */
#define PEP_NAMES_FUNCTIONS(prefix, type)                                                          \
    static inline const char *prefix##_name(type v) { return pep_names_name(&prefix##_names, (int)v); } \
    static inline int prefix##_parse(const char *name, type *out)                                  \
    {                                                                                              \
        int v = 0, rc = pep_names_parse(&prefix##_names, name, &v);                               \
        if (rc == 0) *out = (type)v;                                                              \
        return rc;                                                                                \
    }

#endif
