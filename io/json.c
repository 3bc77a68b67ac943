/* Strict JSON reader into a tree (json.h): recursive descent with a depth limit. */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "file.h"

struct parser {
    const unsigned char *s;
    size_t len, pos;
    const char *label;
    size_t base;
    int depth;
};

/* Records a syntax error at byte `at` with line and column. */
static int syntax_error(const struct parser *p, size_t at, const char *what)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char near[24] = "end of input";
    if (at < p->len) {
        unsigned char c = p->s[at];
        if (c >= 0x20 && c < 0x7f) snprintf(near, sizeof near, "'%c'", c);
        else snprintf(near, sizeof near, "byte 0x%02x", c);
    }
    return pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__,
                         "%s: invalid JSON at byte %zu (line %zu, column %zu, at %s): %s", p->label,
                         p->base + at, line, col, near, what);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int parse_value(struct parser *p, struct pep_json *v);

static void json_fini(struct pep_json *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->count; i++) {
        if (v->items) json_fini(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}

static int hex4(const struct parser *p, size_t at, unsigned *out)
{
    if (at + 4 > p->len) return syntax_error(p, at, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[at + i];
        unsigned d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return syntax_error(p, at + i, "bad hex digit in \\u escape");
        v = v * 16 + d;
    }
    *out = v;
    return PEP_OK;
}

/* Length of the valid UTF-8 sequence starting at s[0] (at most n bytes), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) need = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) need = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) need = 4, cp = c & 0x07;
    else return 0;
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
    if (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
    return need;
}

void pep_json_write_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', f);
    while (n > 0) {
        size_t k = utf8_seq(p, n);
        if (k == 0) {
            fputs("\\ufffd", f);
            k = 1;
        } else if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p);
        } else if (*p < 0x20) {
            fprintf(f, "\\u%04x", *p);
        } else {
            fwrite(p, 1, k, f);
        }
        p += k, n -= k;
    }
    fputc('"', f);
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Parses a string starting at the opening quote; the result is NUL-terminated. */
static int parse_string(struct parser *p, char **out, size_t *out_len)
{
    size_t start = p->pos++;
    /* the decoded string is never longer than its source bytes */
    size_t end = start + 1;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) return syntax_error(p, start, "unterminated string");
    char *buf = malloc(end - start + 1);
    PEP_CHECK(buf, PEP_ERR_NOMEM, "%s: out of memory reading a JSON string", p->label);
    size_t n = 0;
    int rc = PEP_OK;
    while (1) {
        if (p->pos >= p->len) {
            rc = syntax_error(p, start, "unterminated string");
            goto fail;
        }
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            rc = syntax_error(p, p->pos, "control character in string (escape it)");
            goto fail;
        }
        if (c == '\\') {
            if (p->pos + 1 >= p->len) {
                rc = syntax_error(p, p->pos, "truncated escape");
                goto fail;
            }
            unsigned char e = p->s[p->pos + 1];
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e && simple) {
                static const char map[] = "\"\\/\b\f\n\r\t";
                buf[n++] = map[simple - "\"\\/bfnrt"];
                p->pos += 2;
                continue;
            }
            if (e != 'u') {
                rc = syntax_error(p, p->pos, "unknown escape");
                goto fail;
            }
            unsigned cp;
            if ((rc = hex4(p, p->pos + 2, &cp)) != PEP_OK) goto fail;
            size_t esc = p->pos;
            p->pos += 6;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                rc = syntax_error(p, esc, "lone low surrogate in \\u escape");
                goto fail;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (p->pos + 1 >= p->len || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    rc = syntax_error(p, esc, "high surrogate not followed by a low surrogate");
                    goto fail;
                }
                if ((rc = hex4(p, p->pos + 2, &lo)) != PEP_OK) goto fail;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    rc = syntax_error(p, p->pos, "high surrogate not followed by a low surrogate");
                    goto fail;
                }
                p->pos += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* 6 source bytes (12 for a pair) always hold the 1..4 output bytes */
            n += put_utf8(buf + n, cp);
            continue;
        }
        size_t k = utf8_seq(p->s + p->pos, p->len - p->pos);
        if (k == 0) {
            rc = syntax_error(p, p->pos, "invalid UTF-8 in string");
            goto fail;
        }
        memcpy(buf + n, p->s + p->pos, k);
        n += k;
        p->pos += k;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return PEP_OK;
fail:
    free(buf);
    return rc;
}

static int parse_number(struct parser *p, struct pep_json *v)
{
    size_t start = p->pos, i = p->pos;
    const unsigned char *s = p->s;
    v->type = PEP_JSON_TYPE_NUMBER;
    v->is_integer = 1;
    if (i < p->len && s[i] == '-') {
        v->negative = 1;
        i++;
    }
    if (i >= p->len || s[i] < '0' || s[i] > '9') return syntax_error(p, i, "expected a digit");
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9') return syntax_error(p, i, "leading zero in number");
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9') {
            unsigned d = s[i] - '0';
            if (v->magnitude > (UINT64_MAX - d) / 10) v->overflow = 1;
            else v->magnitude = v->magnitude * 10 + d;
            i++;
        }
    }
    if (i < p->len && s[i] == '.') {
        v->is_integer = 0;
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') return syntax_error(p, i, "expected a digit after '.'");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        v->is_integer = 0;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') return syntax_error(p, i, "expected a digit in the exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    char tmp[64];
    size_t n = i - start;
    if (n < sizeof tmp) {
        memcpy(tmp, s + start, n);
        tmp[n] = '\0';
        v->number = strtod(tmp, NULL);
    } else {
        char *big = malloc(n + 1);
        PEP_CHECK(big, PEP_ERR_NOMEM, "%s: out of memory reading a number", p->label);
        memcpy(big, s + start, n);
        big[n] = '\0';
        v->number = strtod(big, NULL);
        free(big);
    }
    p->pos = i;
    return PEP_OK;
}

static int literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return syntax_error(p, p->pos, "expected a value (object, array, string, number, true, false or null)");
    p->pos += n;
    return PEP_OK;
}

/* Grows items (and keys) of a container to hold one more member. */
static int grow(struct parser *p, struct pep_json *v, size_t *cap, int with_keys)
{
    if (v->count < *cap) return PEP_OK;
    size_t ncap = *cap ? 2 * *cap : 4;
    struct pep_json *items = realloc(v->items, ncap * sizeof *items);
    PEP_CHECK(items, PEP_ERR_NOMEM, "%s: out of memory reading JSON", p->label);
    v->items = items;
    if (with_keys) {
        char **keys = realloc(v->keys, ncap * sizeof *keys);
        PEP_CHECK(keys, PEP_ERR_NOMEM, "%s: out of memory reading JSON", p->label);
        v->keys = keys;
    }
    *cap = ncap;
    return PEP_OK;
}

static int parse_array(struct parser *p, struct pep_json *v)
{
    size_t cap = 0;
    v->type = PEP_JSON_TYPE_ARRAY;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return PEP_OK;
    }
    while (1) {
        PEP_CALL(grow(p, v, &cap, 0));
        memset(&v->items[v->count], 0, sizeof v->items[0]);
        v->count++;
        PEP_CALL(parse_value(p, &v->items[v->count - 1]));
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return PEP_OK;
        }
        return syntax_error(p, p->pos, "expected ',' or ']' in array");
    }
}

static int parse_object(struct parser *p, struct pep_json *v)
{
    size_t cap = 0;
    v->type = PEP_JSON_TYPE_OBJECT;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return PEP_OK;
    }
    while (1) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"') return syntax_error(p, p->pos, "expected a string key in object");
        size_t key_pos = p->pos;
        char *key;
        size_t key_len;
        PEP_CALL(parse_string(p, &key, &key_len));
        if (strlen(key) != key_len) {
            free(key);
            return syntax_error(p, key_pos, "object key contains \\u0000");
        }
        for (size_t i = 0; i < v->count; i++)
            if (strcmp(v->keys[i], key) == 0) {
                char what[160];
                snprintf(what, sizeof what, "duplicate key '%.100s' in object", key);
                free(key);
                return syntax_error(p, key_pos, what);
            }
        int rc = grow(p, v, &cap, 1);
        if (rc != PEP_OK) {
            free(key);
            return rc;
        }
        memset(&v->items[v->count], 0, sizeof v->items[0]);
        v->keys[v->count] = key;
        v->count++;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') return syntax_error(p, p->pos, "expected ':' after object key");
        p->pos++;
        PEP_CALL(parse_value(p, &v->items[v->count - 1]));
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            return PEP_OK;
        }
        return syntax_error(p, p->pos, "expected ',' or '}' in object");
    }
}

static int parse_value(struct parser *p, struct pep_json *v)
{
    skip_ws(p);
    v->pos = p->pos;
    if (p->pos >= p->len) return syntax_error(p, p->pos, "expected a value");
    unsigned char c = p->s[p->pos];
    if (c == '{' || c == '[') {
        if (p->depth >= PEP_JSON_MAX_DEPTH) return syntax_error(p, p->pos, "nesting deeper than 64 levels");
        p->depth++;
        int rc = c == '{' ? parse_object(p, v) : parse_array(p, v);
        p->depth--;
        return rc;
    }
    if (c == '"') {
        v->type = PEP_JSON_TYPE_STRING;
        return parse_string(p, &v->string, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    if (c == 't') {
        v->type = PEP_JSON_TYPE_BOOL;
        v->boolean = 1;
        return literal(p, "true");
    }
    if (c == 'f') {
        v->type = PEP_JSON_TYPE_BOOL;
        return literal(p, "false");
    }
    if (c == 'n') {
        v->type = PEP_JSON_TYPE_NULL;
        return literal(p, "null");
    }
    return syntax_error(p, p->pos, "expected a value (object, array, string, number, true, false or null)");
}

int pep_json_parse(const char *text, size_t len, const char *label, size_t base, struct pep_json **out)
{
    *out = NULL;
    struct parser p = {(const unsigned char *)text, len, 0, label ? label : "JSON", base, 0};
    struct pep_json *root = calloc(1, sizeof *root);
    PEP_CHECK(root, PEP_ERR_NOMEM, "%s: out of memory", p.label);
    int rc = parse_value(&p, root);
    if (rc == PEP_OK) {
        skip_ws(&p);
        if (p.pos != p.len) rc = syntax_error(&p, p.pos, "unexpected data after the JSON value");
    }
    if (rc != PEP_OK) {
        json_fini(root);
        free(root);
        return pep_error_trace(rc, __FILE__, __LINE__, __func__);
    }
    *out = root;
    return PEP_OK;
}

int pep_json_parse_file(const char *path, struct pep_json **out)
{
    char *buf = NULL;
    size_t n = 0;
    *out = NULL;
    PEP_CALL(pep_file_read(path, "JSON file", PEP_FILE_MAX_JSON, &buf, &n));
    int rc = pep_json_parse(buf, n, path, 0, out);
    pep_free(buf);
    if (rc != PEP_OK) pep_error_trace(rc, __FILE__, __LINE__, __func__);
    return rc;
}

void pep_json_free(struct pep_json **j)
{
    if (!j || !*j) return;
    json_fini(*j);
    free(*j);
    *j = NULL;
}

const struct pep_json *pep_json_get(const struct pep_json *obj, const char *key)
{
    if (!obj || obj->type != PEP_JSON_TYPE_OBJECT) return NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

int pep_json_as_u64(const struct pep_json *v, uint64_t *out)
{
    if (!v || v->type != PEP_JSON_TYPE_NUMBER || !v->is_integer || v->overflow) return -1;
    if (v->negative && v->magnitude != 0) return -1;
    *out = v->magnitude;
    return 0;
}

const char *pep_json_type_name(enum pep_json_type t)
{
    switch (t) {
    case PEP_JSON_TYPE_NULL: return "null";
    case PEP_JSON_TYPE_BOOL: return "boolean";
    case PEP_JSON_TYPE_NUMBER: return "number";
    case PEP_JSON_TYPE_STRING: return "string";
    case PEP_JSON_TYPE_ARRAY: return "array";
    case PEP_JSON_TYPE_OBJECT: return "object";
    }
    return "?";
}
