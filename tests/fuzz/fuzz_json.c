/* libFuzzer harness for the JSON reader (io/json.c) as `peprime import-hf --config` reads
 * config.json: the input is written to a file and parsed with pep_json_parse_file. A rejection
 * must be PEP_ERR_FORMAT naming the file; an accepted tree is walked whole: types, counts, keys,
 * string lengths and the integer accessors must agree with each other. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "fuzz_util.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct pep_json *v, size_t size, int depth)
{
    if (depth > PEP_JSON_MAX_DEPTH + 1) fuzz_fail("tree deeper than %d", PEP_JSON_MAX_DEPTH);
    if (v->pos >= size) fuzz_fail("value at byte %zu of a %zu-byte text", v->pos, size);
    uint64_t u;
    switch (v->type) {
    case PEP_JSON_TYPE_NULL:
    case PEP_JSON_TYPE_BOOL: break;
    case PEP_JSON_TYPE_NUMBER:
        if (pep_json_as_u64(v, &u) == 0 && (!v->is_integer || v->overflow || (v->negative && u != 0)))
            fuzz_fail("as_u64 accepted a number that is not a non-negative integer");
        break;
    case PEP_JSON_TYPE_STRING:
        if (!v->string || v->string[v->len] != '\0') fuzz_fail("string not NUL-terminated at its length");
        break;
    case PEP_JSON_TYPE_ARRAY:
    case PEP_JSON_TYPE_OBJECT:
        if (v->count && !v->items) fuzz_fail("%zu items but no array", v->count);
        for (size_t i = 0; i < v->count; i++) {
            if (v->type == PEP_JSON_TYPE_OBJECT) {
                if (!v->keys || !v->keys[i]) fuzz_fail("member %zu has no key", i);
                const struct pep_json *got = pep_json_get(v, v->keys[i]);
                if (!got) fuzz_fail("member '%s' not found by its own key", v->keys[i]);
            }
            walk(&v->items[i], size, depth + 1);
        }
        break;
    default: fuzz_fail("unknown type %d", (int)v->type);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("config.json", data, size);
    struct pep_json *j = NULL;
    pep_error_clear();
    int rc = pep_json_parse_file(path, &j);
    if (rc != PEP_OK) {
        if (j) fuzz_fail("tree returned with an error");
        fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_FORMAT), path);
        return 0;
    }
    walk(j, size, 0);
    pep_json_free(&j);
    return 0;
}
