/* test_pairset.c — the duplicate set finds equal pairs, and only those. */
#include "pairset.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static rw_pair_t *add(rw_dataset_t *ds, const char *prompt, const char *chosen,
                      const char *rejected, const char *domain)
{
    return rw_dataset_add(ds, prompt, strlen(prompt), chosen, strlen(chosen), rejected,
                          strlen(rejected), domain);
}

Test(pairset, finds_equal_pairs_by_content)
{
    rw_dataset_t ds, probe;
    rw_dataset_init(&ds);
    rw_dataset_init(&probe);
    rw_pairset_t s;
    rw_pairset_init(&s, &ds);
    add(&ds, "p", "a", "b", "d");
    rw_pairset_add(&s, 0, rw_pair_hash(&ds.pairs[0]));
    rw_pair_t *same = add(&probe, "p", "a", "b", "d");
    cr_assert_eq(rw_pairset_find(&s, same, rw_pair_hash(same)), 0);
    const char *other[][4] = {
        {"p", "a", "b", "e"}, {"q", "a", "b", "d"}, {"p", "b", "a", "d"}, {"p", "a", "bb", "d"}};
    for (size_t i = 0; i < 4; i++) {
        rw_pair_t *o = add(&probe, other[i][0], other[i][1], other[i][2], other[i][3]);
        cr_assert_eq(rw_pairset_find(&s, o, rw_pair_hash(o)), SIZE_MAX, "case %zu", i);
    }
    rw_pairset_fini(&s);
    rw_pairset_fini(&s); /* safe twice */
    rw_dataset_fini(&ds);
    rw_dataset_fini(&probe);
}

Test(pairset, a_hash_collision_is_not_a_duplicate)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_pairset_t s;
    rw_pairset_init(&s, &ds);
    add(&ds, "p", "a", "b", "d");
    add(&ds, "p", "a", "c", "d");
    /* claim both have hash 7: the full comparison must tell them apart */
    rw_pairset_add(&s, 0, 7);
    cr_assert_eq(rw_pairset_find(&s, &ds.pairs[1], 7), SIZE_MAX);
    rw_pairset_add(&s, 1, 7);
    cr_assert_eq(rw_pairset_find(&s, &ds.pairs[1], 7), 1);
    cr_assert_eq(rw_pairset_find(&s, &ds.pairs[0], 7), 0);
    rw_pairset_fini(&s);
    rw_dataset_fini(&ds);
}

Test(pairset, grows_past_many_pairs)
{
    rw_dataset_t ds;
    rw_dataset_init(&ds);
    rw_pairset_t s;
    rw_pairset_init(&s, &ds);
    char buf[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(buf, sizeof buf, "prompt %d", i);
        rw_pair_t *p = add(&ds, buf, "a", "b", "d");
        uint64_t h = rw_pair_hash(p);
        cr_assert_eq(rw_pairset_find(&s, p, h), SIZE_MAX);
        rw_pairset_add(&s, ds.n - 1, h);
    }
    for (size_t i = 0; i < ds.n; i += 997)
        cr_assert_eq(rw_pairset_find(&s, &ds.pairs[i], rw_pair_hash(&ds.pairs[i])), i);
    cr_assert_eq(s.n, 20000);
    cr_assert(s.cap >= 2 * s.n);
    rw_pairset_fini(&s);
    rw_dataset_fini(&ds);
}
