/* Generated corpus: labelled as generated, deterministic, well-formed IOB2, languages share
 * patterns but not surface words, entity cues are there to learn. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "data/generated.h"
#include "metrics/conlleval.h"
#include "testutil.h"

static const char *const TAGS[] = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"};

static int same_corpus(const struct pep_corpus *a, const struct pep_corpus *b)
{
    return a->nsent == b->nsent && a->nwords == b->nwords && a->text_len == b->text_len &&
           memcmp(a->text, b->text, a->text_len) == 0 && memcmp(a->tags, b->tags, a->nwords * sizeof(int)) == 0;
}

static void test_generated_deterministic_and_labelled(void **state)
{
    struct pep_corpus *a = NULL, *b = NULL, *d = NULL, *e = NULL;
    assert_int_equal(pep_generated_corpus("xx", "train", 500, 11, TAGS, 7, &a), PEP_OK);
    assert_int_equal(pep_generated_corpus("xx", "train", 500, 11, TAGS, 7, &b), PEP_OK);
    assert_int_equal(pep_generated_corpus("xx", "test", 500, 11, TAGS, 7, &d), PEP_OK);
    assert_int_equal(pep_generated_corpus("xx", "train", 500, 12, TAGS, 7, &e), PEP_OK);
    assert_string_equal(a->name, "generated:xx");
    assert_int_equal(a->generated, 1);
    assert_int_equal(a->nsent, 500);
    assert_true(same_corpus(a, b));
    assert_false(same_corpus(a, d));
    assert_false(same_corpus(a, e));
    for (int s = 0; s < 3; s++) {
        for (int j = 0; j < pep_corpus_sentence_len(a, s); j++)
            printf("%s/%s ", pep_corpus_word(a, s, j), TAGS[pep_corpus_sentence_tags(a, s)[j]]);
        printf("\n");
    }
    pep_corpus_destroy(&a);
    pep_corpus_destroy(&b);
    pep_corpus_destroy(&d);
    pep_corpus_destroy(&e);
}

static void test_generated_iob2_and_cues(void **state)
{
    struct pep_corpus *c = NULL;
    assert_int_equal(pep_generated_corpus("yy", "train", 2000, 5, TAGS, 7, &c), PEP_OK);
    struct pep_conlleval *ev = NULL;
    assert_int_equal(pep_conlleval_create(TAGS, 7, 1, &ev), PEP_OK);
    long entity_words = 0, lower_entity = 0, mid_capital_o = 0;
    for (int s = 0; s < c->nsent; s++) {
        int n = pep_corpus_sentence_len(c, s);
        const int *t = pep_corpus_sentence_tags(c, s);
        assert_int_equal(pep_conlleval_add(ev, t, t, n), PEP_OK);
        for (int j = 0; j < n; j++) {
            const char *w = pep_corpus_word(c, s, j);
            int cap = isupper((unsigned char)w[0]);
            if (t[j] != 0) entity_words++, lower_entity += !cap && (unsigned char)w[0] < 0x80;
            else if (j > 0) mid_capital_o += cap;
        }
    }
    assert_int_equal(ev->ill_formed_gold, 0); /* strict IOB2: every I- continues a chunk */
    /* every type occurs, at a rate of roughly 1-3 entities per sentence */
    for (int k = 0; k < 3; k++) assert_true(ev->per_type[k].gold > 300);
    assert_true(ev->all.gold > 2000 && ev->all.gold < 6000);
    assert_int_equal(lower_entity, 0);   /* entity words start with a capital (or a non-ASCII letter) */
    assert_int_equal(mid_capital_o, 0);  /* no capitalised O word inside a sentence ... */
    /* ... except the ORG suffix, which is tagged I-ORG: nothing to check there. */
    printf("entities %ld (PER %ld ORG %ld LOC %ld), entity words %ld, words %zu\n", ev->all.gold,
           ev->per_type[0].gold, ev->per_type[1].gold, ev->per_type[2].gold, entity_words, c->nwords);
    pep_conlleval_destroy(&ev);
    pep_corpus_destroy(&c);
}

static void test_generated_languages_differ(void **state)
{
    struct pep_corpus *a = NULL, *b = NULL;
    assert_int_equal(pep_generated_corpus("aa", "train", 300, 3, TAGS, 7, &a), PEP_OK);
    assert_int_equal(pep_generated_corpus("bb", "train", 300, 3, TAGS, 7, &b), PEP_OK);
    /* Count O-word types of aa that also occur as O words in bb: vocabularies should barely overlap,
     * while entity names overlap (half the name inventory is shared). */
    long o_shared = 0, o_total = 0, ent_shared = 0, ent_total = 0;
    for (size_t i = 0; i < a->nwords && i < 3000; i++) {
        const char *w = a->text + a->word_off[i];
        if (strcmp(w, ".") == 0) continue;
        int found = 0;
        for (size_t j = 0; j < b->nwords && !found; j++)
            found = strcasecmp(w, b->text + b->word_off[j]) == 0 && (a->tags[i] != 0) == (b->tags[j] != 0);
        if (a->tags[i] == 0) o_total++, o_shared += found;
        else ent_total++, ent_shared += found;
    }
    assert_true(o_total > 0 && ent_total > 0);
    assert_true(o_shared * 10 < o_total);       /* < 10% of function/filler words shared */
    assert_true(ent_shared * 10 > ent_total * 3); /* > 30% of entity words shared */
    pep_corpus_destroy(&a);
    pep_corpus_destroy(&b);
    const char *few[] = {"O", "B-PER", "I-PER"};
    pep_error_clear();
    assert_int_equal(pep_generated_corpus("aa", "train", 10, 3, few, 3, &a), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "B-ORG"));
    assert_null(a);
    pep_error_clear();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_deterministic_and_labelled),
        cmocka_unit_test(test_generated_iob2_and_cues),
        cmocka_unit_test(test_generated_languages_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
