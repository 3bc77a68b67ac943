/* libFuzzer harness for INI job files with `include` (io/ini.c) and the config keys they set
 * (src/core/config.c). The input is split at each line "%%%" into up to three files in the
 * process's temp folder: main.ini, a.ini and sub/b.ini (so `include = a.ini`,
 * `include = sub/b.ini` and include cycles can be reached); main.ini is loaded as
 * `--config` does. A rejection must be PEP_ERR_USAGE (a bad line, key or value) or
 * PEP_ERR_IO (an include that cannot be opened) with a message naming the file. An accepted
 * config must survive a round trip: written as INI (what every checkpoint stores), loaded
 * again and written again, the two texts are equal. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "fuzz_util.h"
#include "ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const k_files[] = {"main.ini", "a.ini", "sub/b.ini"};
static const char k_sep[] = "\n%%%\n";

static void check_rejection(int rc)
{
    const char *msg = pep_error_message();
    if (!strstr(msg, fuzz_tmpdir()) && !strstr(msg, "job file '"))
        fuzz_fail("the error message names no file: %s", msg);
    fuzz_rejected(rc, FUZZ_ERR(PEP_ERR_USAGE) | FUZZ_ERR(PEP_ERR_IO), NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t left = size;
    char main_path[8192] = "";
    for (int f = 0; f < 3; f++) {
        const char *sep = f < 2 ? memmem(text, left, k_sep, sizeof k_sep - 1) : NULL;
        size_t n = sep ? (size_t)(sep - text) + 1 : left; /* keep the part's last newline */
        const char *path = fuzz_write(k_files[f], text, n);
        if (f == 0) snprintf(main_path, sizeof main_path, "%s", path);
        text += sep ? n + sizeof k_sep - 2 : n;
        left -= sep ? n + sizeof k_sep - 2 : n;
    }

    struct pep_config cfg, again;
    pep_config_defaults(&cfg);
    pep_error_clear();
    int rc = pep_ini_load(&cfg, main_path);
    if (rc != PEP_OK) {
        check_rejection(rc);
        return 0;
    }
    if (pep_config_validate(&cfg) != PEP_OK) fuzz_rejected(pep_error_code(), FUZZ_ERR(PEP_ERR_USAGE), NULL);

    char *ini = NULL, *ini2 = NULL;
    if (pep_config_to_ini(&cfg, &ini) != PEP_OK) fuzz_fail("to_ini failed: %s", pep_error_message());
    const char *rt = fuzz_write("roundtrip.ini", ini, strlen(ini));
    pep_config_defaults(&again);
    if (pep_ini_load(&again, rt) != PEP_OK) fuzz_fail("the written config does not load: %s", pep_error_message());
    if (pep_config_to_ini(&again, &ini2) != PEP_OK) fuzz_fail("to_ini failed: %s", pep_error_message());
    if (strcmp(ini, ini2)) fuzz_fail("config changed in a round trip:\n%s\n---\n%s", ini, ini2);
    pep_free(ini);
    pep_free(ini2);
    return 0;
}
