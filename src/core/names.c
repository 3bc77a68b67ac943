/* Enum <-> name table lookups (names.h). */
#include "core/names.h"

#include <stdio.h>
#include <string.h>

const char *pep_names_name(const struct pep_names *t, int value)
{
    for (int i = 0; i < t->count; i++)
        if (t->entry[i].value == value) return t->entry[i].name;
    return "?";
}

int pep_names_parse(const struct pep_names *t, const char *name, int *value)
{
    for (int i = 0; i < t->count; i++)
        if (name && !strcmp(t->entry[i].name, name)) {
            *value = t->entry[i].value;
            return 0;
        }
    return -1;
}

void pep_names_list(const struct pep_names *t, const char *sep, const char *last_sep, char *buf, size_t len)
{
    size_t used = 0;
    if (len) buf[0] = '\0';
    for (int i = 0; i < t->count && used < len; i++) {
        const char *s = i == 0 ? "" : i == t->count - 1 ? last_sep : sep;
        int n = snprintf(buf + used, len - used, "%s%s", s, t->entry[i].name);
        if (n < 0) break;
        used += (size_t)n;
    }
}
