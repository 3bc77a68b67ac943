/* INI job-file reader (ini.h). */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int load(struct pep_config *cfg, const char *path, int depth)
{
    PEP_CHECK(depth < 8, PEP_ERR_USAGE, "%s: includes nested more than 8 deep (an include cycle?)", path);
    FILE *f = fopen(path, "r");
    PEP_CHECK(f, PEP_ERR_IO, "cannot open job file '%s': %s", path, strerror(errno));
    char line[4096], section[64] = "";
    int lineno = 0, rc = PEP_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char where[PEP_ERROR_LABEL_MAX];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__, "%s: line longer than %zu characters",
                               where, sizeof line - 2);
            break;
        }
        char *s = line;
        if (lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
            s += 3;
        /* comments: a line starting with # or ;, or a # after a space or tab (the value's end) */
        for (char *c = s; *c; c++)
            if (*c == '#' && c > s && (c[-1] == ' ' || c[-1] == '\t')) {
                *c = '\0';
                break;
            }
        s = trim(s);
        if (!*s || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] != '\0' || close - s - 1 <= 0 || (size_t)(close - s - 1) >= sizeof section) {
                rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                                   "%s: malformed section header '%s' (expected [name])", where, s);
                break;
            }
            *close = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                               "%s: expected 'key = value', got '%s'", where, s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (*value == '#') *value = '\0'; /* "key =# note": a value starting with # is a comment too */
        if (!section[0] && !strcmp(key, "include")) {
            char inc[2048];
            if (value[0] == '/') snprintf(inc, sizeof inc, "%s", value);
            else {
                const char *slash = strrchr(path, '/');
                int dirlen = slash ? (int)(slash - path) : 1;
                snprintf(inc, sizeof inc, "%.*s/%s", dirlen, slash ? path : ".", value);
            }
            rc = load(cfg, inc, depth + 1);
            if (rc) {
                pep_error_trace(rc, where, 0, "include");
                break;
            }
            continue;
        }
        if (!section[0]) {
            rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                               "%s: key '%s' before any [section] (only 'include' may stand there)", where, key);
            break;
        }
        char full[192];
        snprintf(full, sizeof full, "%s.%s", section, key);
        rc = pep_config_set(cfg, full, value, where);
        if (rc) break;
    }
    fclose(f);
    return rc;
}

int pep_ini_load(struct pep_config *cfg, const char *path) { return load(cfg, path, 0); }
