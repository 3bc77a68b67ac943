/* The generated NER corpus (see generated.h): templates over concept slots, per-language
 * spellings from a syllable inventory, shared and per-language entity names. */
#include "data/generated.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"

enum { N_FILLER = 60, N_NAMES = 40 };
/* Concepts with a fixed role in the templates; fillers are concepts 100 .. 100 + N_FILLER. */
enum {
    C_SAID = 1, C_MET, C_VISITED, C_JOINED, C_IN, C_FROM, C_OFFICE, C_OPENED, C_LEADS, C_WITH, C_AND, C_THE,
    C_ORG_SUFFIX, C_MR, C_NEAR, C_PERIOD, C_FILLER = 100
};
enum { E_PER = 0, E_ORG = 1, E_LOC = 2 };

struct gen_lang {
    uint64_t key;
    const char *cons[12];
    int ncons;
    const char *vow[6];
    int nvow;
};

static const char *const CONSONANTS[] = {"p", "t", "k", "b", "d", "g", "m", "n", "s", "l", "r", "v",
                                         "z", "f", "h", "j", "w", "ch", "sh", "th", "ž", "ñ"};
static const char *const VOWELS[] = {"a", "e", "i", "o", "u", "y", "á", "é", "ø", "ü", "ai", "ou"};

static uint64_t fnv1a(const char *s) { return pep_fnv1a64(s, strlen(s)); }

static void lang_init(struct gen_lang *L, uint64_t seed, uint64_t key)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, key, 0x6c616e67ULL);
    L->key = key;
    int nc = (int)(sizeof CONSONANTS / sizeof *CONSONANTS), nv = (int)(sizeof VOWELS / sizeof *VOWELS);
    int cidx[32], vidx[16];
    for (int i = 0; i < nc; i++) cidx[i] = i;
    for (int i = 0; i < nv; i++) vidx[i] = i;
    for (int i = 0; i < nc; i++) {
        int j = i + (int)pep_rng_below(&r, (uint64_t)(nc - i)), t = cidx[i];
        cidx[i] = cidx[j], cidx[j] = t;
    }
    for (int i = 0; i < nv; i++) {
        int j = i + (int)pep_rng_below(&r, (uint64_t)(nv - i)), t = vidx[i];
        vidx[i] = vidx[j], vidx[j] = t;
    }
    L->ncons = 8 + (int)pep_rng_below(&r, 5);
    L->nvow = 3 + (int)pep_rng_below(&r, 4);
    for (int i = 0; i < L->ncons; i++) L->cons[i] = CONSONANTS[cidx[i]];
    for (int i = 0; i < L->nvow; i++) L->vow[i] = VOWELS[vidx[i]];
}

/* The spelling of concept `c` (kind-tagged) in language L: 1-3 CV(C) syllables. */
static void spell(const struct gen_lang *L, uint64_t seed, uint64_t c, int capital, char *buf, size_t cap)
{
    struct pep_rng r;
    pep_rng_seed(&r, seed, L->key, c);
    int nsyl = 1 + (int)pep_rng_below(&r, 3);
    if (c < C_FILLER && c != C_ORG_SUFFIX) nsyl = 1 + (int)pep_rng_below(&r, 2); /* function words are short */
    size_t used = 0;
    buf[0] = '\0';
    for (int s = 0; s < nsyl; s++) {
        const char *a = L->cons[pep_rng_below(&r, (uint64_t)L->ncons)];
        const char *v = L->vow[pep_rng_below(&r, (uint64_t)L->nvow)];
        const char *z = pep_rng_uniform(&r) < 0.3f ? L->cons[pep_rng_below(&r, (uint64_t)L->ncons)] : "";
        used += (size_t)snprintf(buf + used, cap - used, "%s%s%s", a, v, z);
        if (used >= cap) break;
    }
    if (capital && buf[0] >= 'a' && buf[0] <= 'z') buf[0] = (char)toupper((unsigned char)buf[0]);
}

struct gen {
    struct pep_corpus *c;
    const struct gen_lang *lang, *shared;
    uint64_t seed;
    struct pep_rng r;
    int tag_o, tag_b[3], tag_i[3];
};

static int emit(struct gen *g, const char *w, int tag) { return pep_corpus_add_word(g->c, w, strlen(w), tag); }

static int emit_concept(struct gen *g, uint64_t concept, int capital)
{
    char w[64];
    spell(g->lang, g->seed, concept, capital, w, sizeof w);
    return emit(g, w, g->tag_o);
}

/* A name word of kind `kind`: half the inventory is shared by every language. */
static void name_word(struct gen *g, int kind, char *w, size_t cap)
{
    uint64_t k = pep_rng_below(&g->r, N_NAMES);
    const struct gen_lang *L = k < N_NAMES / 2 ? g->shared : g->lang;
    spell(L, g->seed, 1000 + (uint64_t)kind * 100 + k, 1, w, cap);
}

static int emit_entity(struct gen *g, int kind)
{
    char w[64];
    int nwords = kind == E_PER ? 1 + (int)pep_rng_below(&g->r, 2) : kind == E_LOC ? 1 + (pep_rng_uniform(&g->r) < 0.3f) : 1;
    for (int i = 0; i < nwords; i++) {
        name_word(g, kind, w, sizeof w);
        PEP_CALL(emit(g, w, i == 0 ? g->tag_b[kind] : g->tag_i[kind]));
    }
    if (kind == E_ORG) { /* ORG = name [name] + the language's "Inc." */
        if (pep_rng_uniform(&g->r) < 0.4f) {
            name_word(g, kind, w, sizeof w);
            PEP_CALL(emit(g, w, g->tag_i[kind]));
        }
        spell(g->lang, g->seed, C_ORG_SUFFIX, 1, w, sizeof w);
        PEP_CALL(emit(g, w, g->tag_i[kind]));
    }
    return PEP_OK;
}

static int fillers(struct gen *g, int max)
{
    int n = (int)pep_rng_below(&g->r, (uint64_t)max + 1);
    for (int i = 0; i < n; i++) PEP_CALL(emit_concept(g, C_FILLER + pep_rng_below(&g->r, N_FILLER), 0));
    return PEP_OK;
}

/* Templates: negative numbers are entity slots (-1 PER, -2 ORG, -3 LOC), 0 is 0-2 fillers. */
static const int TEMPLATES[][10] = {
    {-1, C_SAID, 0, C_PERIOD},
    {-1, C_MET, -1, C_IN, -3, C_PERIOD},
    {0, C_MR, -1, C_VISITED, -3, 0, C_PERIOD},
    {-1, C_JOINED, -2, C_FROM, -3, C_PERIOD},
    {-2, C_OPENED, C_THE, C_OFFICE, C_NEAR, -3, C_PERIOD},
    {-1, C_LEADS, -2, C_AND, -2, C_PERIOD},
    {0, C_THE, 0, C_PERIOD},
    {-3, C_AND, -3, C_WITH, -1, 0, C_PERIOD},
};

int pep_generated_corpus(const char *lang, const char *split, int nsent, uint64_t seed, const char *const *tags,
                         int ntags, struct pep_corpus **out)
{
    *out = NULL;
    PEP_CHECK(nsent > 0, PEP_ERR_USAGE, "generated corpus: %d sentences requested", nsent);
    char name[64];
    snprintf(name, sizeof name, "generated:%s", lang);
    struct gen g;
    memset(&g, 0, sizeof g);
    PEP_CALL(pep_corpus_create(name, tags, ntags, &g.c));
    int rc = PEP_OK;
    static const char *const need[7] = {"O", "B-PER", "B-ORG", "B-LOC", "I-PER", "I-ORG", "I-LOC"};
    int ids[7];
    for (int i = 0; i < 7; i++) {
        ids[i] = pep_corpus_tag_id(g.c, need[i], strlen(need[i]));
        PEP_CHECK_GOTO(rc, ids[i] >= 0, PEP_ERR_USAGE,
                       "the generated corpus needs tag '%s' in data.tags (it uses O,B-PER,I-PER,B-ORG,I-ORG,B-LOC,I-LOC)",
                       need[i]);
    }
    g.tag_o = ids[0];
    for (int k = 0; k < 3; k++) g.tag_b[k] = ids[1 + k], g.tag_i[k] = ids[4 + k];
    g.c->generated = 1;
    g.seed = seed;
    struct gen_lang L, S;
    lang_init(&L, seed, fnv1a(lang));
    lang_init(&S, seed, 0x5368617265ULL); /* the shared name inventory */
    g.lang = &L, g.shared = &S;
    pep_rng_seed(&g.r, seed ^ fnv1a(lang), fnv1a(split ? split : ""), 0x73656e74ULL);
    int ntemplates = (int)(sizeof TEMPLATES / sizeof *TEMPLATES);
    for (int s = 0; s < nsent; s++) {
        const int *t = TEMPLATES[pep_rng_below(&g.r, (uint64_t)ntemplates)];
        size_t first = g.c->nwords;
        for (int i = 0; i < 10 && t[i] != C_PERIOD; i++) {
            if (t[i] < 0) PEP_CALL_GOTO(rc, emit_entity(&g, -t[i] - 1));
            else if (t[i] == 0) PEP_CALL_GOTO(rc, fillers(&g, 2));
            else PEP_CALL_GOTO(rc, emit_concept(&g, (uint64_t)t[i], 0));
        }
        PEP_CALL_GOTO(rc, emit(&g, ".", g.tag_o));
        /* Sentence-initial capital, as in real text: capitalisation alone does not give entities away. */
        char *w0 = g.c->text + g.c->word_off[first];
        if (w0[0] >= 'a' && w0[0] <= 'z') w0[0] = (char)toupper((unsigned char)w0[0]);
        PEP_CALL_GOTO(rc, pep_corpus_end_sentence(g.c));
    }
    *out = g.c;
    return PEP_OK;
cleanup:
    pep_corpus_destroy(&g.c);
    return rc;
}
