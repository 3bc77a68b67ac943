/* SHA-256 (FIPS 180-4): the identity of a file as `sha256sum` prints it, for the base
 * checkpoint an adapted model names instead of copying its encoder (checkpoint.encoder =
 * reference). Not collective; no HDF5. */
#ifndef PEP_SHA256_H
#define PEP_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct pep_sha256 {
    uint32_t h[8];
    uint64_t len;            /* bytes hashed */
    unsigned char buf[64];   /* a partial block */
    size_t used;
};

void pep_sha256_init(struct pep_sha256 *s);
void pep_sha256_update(struct pep_sha256 *s, const void *data, size_t n);
/* The digest as 64 lowercase hex digits + NUL (the state is spent). */
void pep_sha256_hex(struct pep_sha256 *s, char hex[65]);
/* The SHA-256 of a whole file. PEP_ERR_IO naming the file when it cannot be read. */
int pep_sha256_file(const char *path, char hex[65]);

#endif
