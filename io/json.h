/* A small strict JSON (RFC 8259) reader into a tree, for safetensors headers and Hugging
 * Face config.json files, and the one string writer (quoting + escaping) that every JSON
 * peprime writes goes through. Not a general JSON library: no tree writer, no streaming.
 *
 * Strict means: one value per text (trailing whitespace allowed, nothing else), no comments,
 * no trailing commas, no control characters in strings, valid escapes and UTF-16 surrogate
 * pairs, duplicate keys in one object rejected, nesting depth at most PEP_JSON_MAX_DEPTH.
 * Errors are PEP_ERR_FORMAT and name `label`, the byte offset, the line and column.
 * Nothing here is collective. */
#ifndef PEP_JSON_H
#define PEP_JSON_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define PEP_JSON_MAX_DEPTH 64

enum pep_json_type {
    PEP_JSON_TYPE_NULL,
    PEP_JSON_TYPE_BOOL,
    PEP_JSON_TYPE_NUMBER,
    PEP_JSON_TYPE_STRING,
    PEP_JSON_TYPE_ARRAY,
    PEP_JSON_TYPE_OBJECT,
};

struct pep_json {
    enum pep_json_type type;
    size_t pos;             /* byte offset of the value in the parsed text (for messages) */
    int boolean;            /* BOOL */
    double number;          /* NUMBER, as strtod reads it */
    int is_integer;         /* NUMBER written without fraction or exponent */
    int negative;           /* NUMBER has a leading '-' */
    uint64_t magnitude;     /* |value| of an integer NUMBER; valid if !overflow */
    int overflow;           /* integer NUMBER does not fit in uint64_t */
    char *string;           /* STRING, UTF-8, NUL-terminated (may contain NUL: see len) */
    size_t len;             /* STRING byte length */
    size_t count;           /* ARRAY items / OBJECT members */
    struct pep_json *items; /* ARRAY items, or OBJECT member values */
    char **keys;            /* OBJECT member keys (count of them) */
};

/* Parses `len` bytes of `text` (need not be NUL-terminated). `label` names the source in
 * messages ("model.safetensors header"); `base` is added to byte offsets in messages (the
 * header's position in its file). On success *out is a tree freed with pep_json_free(). */
int pep_json_parse(const char *text, size_t len, const char *label, size_t base, struct pep_json **out);
/* Writes `s` to `f` as a JSON string: quoted, '"' and '\\' escaped, control characters as
 * \u00XX, bytes that are not valid UTF-8 as \ufffd (so any path makes valid JSON). */
void pep_json_write_string(FILE *f, const char *s);
/* Reads a whole (small) file and parses it. */
int pep_json_parse_file(const char *path, struct pep_json **out);
void pep_json_free(struct pep_json **j);

/* Member of an object by key, or NULL (also NULL if `obj` is not an object). */
const struct pep_json *pep_json_get(const struct pep_json *obj, const char *key);
/* Non-negative integer value that fits in uint64_t; returns 0 on success, -1 otherwise. */
int pep_json_as_u64(const struct pep_json *v, uint64_t *out);
const char *pep_json_type_name(enum pep_json_type t);

#endif
