/* test_plan.c — the task graph: order, dependencies, leases, attempts. */
#include "plan.h"

#include "err.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <string.h>

/* seed; per domain expert/domain_rm/adapter on seed; router; router_adapter
 * on seed; gates on seed and every expert: the job of DESIGN.md. */
static plan_t *job(const char *const *domains, size_t n)
{
    plan_t *p = plan_new(3);
    uint64_t seed = plan_add(p, MSG_TASK_SEED, NULL, "train", NULL, 0);
    cr_assert_eq(seed, 1);
    plan_add(p, MSG_TASK_ROUTER, NULL, "router", NULL, 0);
    uint64_t gate_deps[16] = {seed};
    for (size_t i = 0; i < n; i++)
        gate_deps[1 + i] = plan_add(p, MSG_TASK_EXPERT, domains[i], "train", &seed, 1);
    for (size_t i = 0; i < n; i++)
        plan_add(p, MSG_TASK_DOMAIN_RM, domains[i], "train", &seed, 1);
    for (size_t i = 0; i < n; i++)
        plan_add(p, MSG_TASK_ADAPTER, domains[i], "train", &seed, 1);
    plan_add(p, MSG_TASK_ROUTER_ADAPTER, NULL, "router", &seed, 1);
    cr_assert(plan_add(p, MSG_TASK_GATES, NULL, "router", gate_deps, n + 1) > 0);
    return p;
}

static const char *const two[] = {"alpha", "beta"};

Test(plan, leases_in_order_and_waits_for_dependencies)
{
    plan_t *p = job(two, 2);
    cr_assert_eq(plan_size(p), 10);
    const plan_task_t *t = plan_next(p, "train", NULL);
    cr_assert_eq(t->kind, MSG_TASK_SEED);
    cr_assert_eq(plan_lease(p, t->id, "w1", 0, 1000), 1);
    cr_assert_null(plan_next(p, "train", NULL), "stage 1 waits for the seed");
    t = plan_next(p, "router", NULL);
    cr_assert_eq(t->kind, MSG_TASK_ROUTER, "the router needs nothing");
    cr_assert_eq(plan_lease(p, t->id, "r", 0, 1000), 1);
    cr_assert_null(plan_next(p, "router", NULL));
    cr_assert_eq(plan_lease(p, 3, "w2", 0, 1000), RW_ESTATE, "not ready");
    cr_assert_eq(plan_complete(p, 1, 1, "w1", 0xabc, 5), 0);
    /* experts first (gates wait for them), then domain models, then adapters */
    msg_task_kind_t want[] = {MSG_TASK_EXPERT,    MSG_TASK_EXPERT,  MSG_TASK_DOMAIN_RM,
                              MSG_TASK_DOMAIN_RM, MSG_TASK_ADAPTER, MSG_TASK_ADAPTER};
    for (int i = 0; i < 6; i++) {
        t = plan_next(p, "train", NULL);
        cr_assert_not_null(t);
        cr_assert_eq(t->kind, want[i], "task %d", i);
        cr_assert_str_eq(t->domain, two[i % 2]);
        cr_assert_eq(plan_lease(p, t->id, i % 2 ? "w2" : "w1", 10, 1000), 1);
    }
    cr_assert_null(plan_next(p, "train", NULL));
    t = plan_next(p, "router", NULL);
    cr_assert_eq(t->kind, MSG_TASK_ROUTER_ADAPTER);
    cr_assert_eq(plan_lease(p, t->id, "r", 10, 1000), 1);
    cr_assert_null(plan_next(p, "router", NULL), "gates wait for the experts and the router");
    cr_assert_eq(plan_complete(p, 3, 1, "w1", 0x3, 20), 0);
    cr_assert_null(plan_next(p, "router", NULL), "gates wait for every expert");
    cr_assert_eq(plan_complete(p, 4, 1, "w2", 0x4, 20), 0);
    t = plan_next(p, "router", NULL);
    cr_assert_not_null(t);
    cr_assert_eq(t->kind, MSG_TASK_GATES);
    cr_assert_eq(t->n_deps, 3);
    cr_assert_not(plan_finished(p));
    plan_destroy(&p);
    cr_assert_null(p);
    plan_destroy(&p);
}

Test(plan, lost_worker_releases_with_next_attempt_and_stale_results_are_refused)
{
    plan_t *p = job(two, 2);
    cr_assert_eq(plan_lease(p, 1, "w1", 0, 1000), 1);
    cr_assert_eq(plan_check(p, 1, 1, "w1"), 0);
    cr_assert_eq(plan_check(p, 1, 1, "w2"), RW_ESTATE, "another worker");
    cr_assert_eq(plan_check(p, 1, 2, "w1"), RW_ESTATE, "another attempt");
    cr_assert_eq(plan_check(p, 99, 1, "w1"), RW_ENOTFOUND);
    cr_assert_eq(plan_lost(p, "w1"), 1);
    cr_assert_eq(plan_task(p, 1)->state, PLAN_PENDING);
    cr_assert_eq(plan_next(p, "train", NULL)->id, 1);
    cr_assert_eq(plan_lease(p, 1, "w2", 50, 1000), 2, "the next attempt");
    cr_assert_eq(plan_complete(p, 1, 1, "w1", 0x1, 60), RW_ESTATE, "the lost attempt is stale");
    cr_assert_eq(plan_task(p, 1)->state, PLAN_LEASED);
    cr_assert_eq(plan_complete(p, 1, 2, "w2", 0x2, 60), 0);
    cr_assert_eq(plan_task(p, 1)->artifact, 0x2);
    cr_assert_eq(plan_complete(p, 1, 2, "w2", 0x3, 61), RW_ESTATE, "a second result");
    cr_assert_eq(plan_task(p, 1)->artifact, 0x2);
    cr_assert_eq(plan_lost(p, "w2"), 0, "done tasks stay done");
    plan_destroy(&p);
}

Test(plan, a_task_taken_back_goes_before_those_never_leased)
{
    plan_t *p = job(two, 2);
    cr_assert_eq(plan_lease(p, 1, "w1", 0, 1000), 1);
    cr_assert_eq(plan_complete(p, 1, 1, "w1", 0xabc, 5), 0);
    /* the experts (3, 4) and beta's domain model (6) leased, 6 taken back;
     * alpha's (5) was never leased */
    for (uint64_t id = 3; id <= 6; id += 1 + (id == 4))
        cr_assert_eq(plan_lease(p, id, "w1", 10, 1000), 1);
    cr_assert_eq(plan_release(p, 6, 1, "w1", NULL, true), 0);
    const plan_task_t *t = plan_next(p, "train", NULL);
    cr_assert_eq(t->id, 6, "task %" PRIu64 " before the one the job waits for", t->id);
    cr_assert_eq(plan_lease(p, 6, "w2", 20, 1000), 2);
    cr_assert_eq(plan_next(p, "train", NULL)->id, 5, "then plan order again");
    plan_destroy(&p);
}

Test(plan, attempts_run_out_and_the_job_fails)
{
    plan_t *p = plan_new(2);
    uint64_t a = plan_add(p, MSG_TASK_SEED, NULL, "train", NULL, 0);
    cr_assert_eq(plan_lease(p, a, "w", 0, 10), 1);
    cr_assert_null(plan_failed(p));
    cr_assert_eq(plan_release(p, a, 1, "w", "lost (reconnected)", true), 0);
    cr_assert_eq(plan_lease(p, a, "w", 0, 10), 2);
    cr_assert_eq(plan_release(p, a, 2, "w", "out of memory", true), 0);
    cr_assert_eq(plan_task(p, a)->state, PLAN_FAILED);
    /* the failed task, and why its last lease ended, for the job's error */
    cr_assert_eq(plan_failed(p), plan_task(p, a));
    cr_assert_str_eq(plan_failed(p)->why, "out of memory");
    cr_assert_null(plan_next(p, "train", NULL));
    plan_destroy(&p);
}

/* A lease whose send failed (its peer gone while the loop was busy) is
 * taken back without spending the attempt: any number of them leave the
 * task its attempts, where each used to count as one. */
Test(plan, a_lease_never_sent_spends_no_attempt)
{
    plan_t *p = plan_new(2);
    uint64_t a = plan_add(p, MSG_TASK_SEED, NULL, "train", NULL, 0);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(plan_lease(p, a, "gone", 0, 10), 1);
        cr_assert_eq(plan_unsend(p, a, 1, "gone"), 0);
        cr_assert_eq(plan_task(p, a)->state, PLAN_PENDING);
    }
    cr_assert_eq(plan_unsend(p, a, 1, "gone"), RW_ESTATE, "not leased");
    cr_assert_eq(plan_lease(p, a, "w", 0, 10), 1, "still the first attempt");
    cr_assert_eq(plan_unsend(p, a, 1, "other"), RW_ESTATE, "another worker's lease");
    cr_assert_eq(plan_release(p, a, 1, "w", "out of memory", true), 0);
    cr_assert_eq(plan_task(p, a)->state, PLAN_PENDING, "one attempt of two spent");
    plan_destroy(&p);
}

/* Only failures count toward the limit: any number of leases taken back
 * for another worker, or dropped by restarts of the coordinator, leave
 * the task its attempts, each lease still numbered anew (so a result of
 * an old one stays stale). A restart tries a failed task again. */
Test(plan, moves_and_restarts_spend_no_attempt)
{
    plan_t *p = plan_new(2);
    uint64_t a = plan_add(p, MSG_TASK_SEED, NULL, "train", NULL, 0);
    uint32_t n = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(plan_lease(p, a, "w", 0, 10), (int)++n);
        cr_assert_eq(plan_release(p, a, n, "w", "leased to an idle worker instead", false), 0);
        cr_assert_eq(plan_lease(p, a, "w", 0, 10), (int)++n);
        cr_assert_eq(plan_requeue(p, a), 1);
    }
    cr_assert_eq(plan_task(p, a)->state, PLAN_PENDING);
    cr_assert_eq(plan_task(p, a)->failures, 0);
    cr_assert_eq(plan_complete(p, a, n, "w", 7, 1), RW_ESTATE, "a result of a lease gone");
    cr_assert_eq(plan_lease(p, a, "w", 0, 10), (int)++n);
    cr_assert_eq(plan_release(p, a, n, "w", "out of memory", true), 0);
    cr_assert_eq(plan_lease(p, a, "w", 0, 10), (int)++n);
    cr_assert_eq(plan_release(p, a, n, "w", "out of memory", true), 0);
    cr_assert_eq(plan_task(p, a)->state, PLAN_FAILED, "two failures of two");
    cr_assert_str_eq(plan_task(p, a)->why, "out of memory");
    cr_assert_eq(plan_retry(p, 0), 1);
    cr_assert_eq(plan_task(p, a)->state, PLAN_PENDING, "a restart tries it again");
    cr_assert_eq(plan_lease(p, a, "w", 0, 10), (int)++n);
    cr_assert_eq(plan_complete(p, a, n, "w", 7, 1), 0);
    plan_destroy(&p);
}

Test(plan, deadlines_expire_and_requeue_keeps_attempts)
{
    plan_t *p = plan_new(0);
    uint64_t a = plan_add(p, MSG_TASK_SEED, NULL, "train", NULL, 0);
    uint64_t b = plan_add(p, MSG_TASK_ROUTER, NULL, "router", NULL, 0);
    plan_lease(p, a, "w", 100, 50);
    plan_lease(p, b, "r", 100, 500);
    uint64_t ids[4];
    cr_assert_eq(plan_expired(p, 149, ids, 4), 0);
    cr_assert_eq(plan_expired(p, 150, ids, 4), 1);
    cr_assert_eq(ids[0], a);
    cr_assert_eq(plan_requeue(p, 0), 2);
    cr_assert_eq(plan_lease(p, a, "w", 200, 50), 2);
    plan_counts_t c;
    plan_count(p, &c);
    cr_assert_eq(c.leased, 1);
    cr_assert_eq(c.pending, 1);
    cr_assert_eq(c.ready, 1);
    cr_assert_eq(plan_complete(p, a, 2, "w", 9, 210), 0);
    cr_assert_eq(plan_lease(p, b, "r", 210, 50), 2);
    cr_assert_eq(plan_complete(p, b, 2, "r", 9, 220), 0);
    cr_assert(plan_finished(p));
    plan_destroy(&p);
}

Test(plan, bad_additions_are_refused)
{
    plan_t *p = plan_new(0);
    uint64_t dep = 5;
    cr_assert_eq(plan_add(p, MSG_TASK_SEED, NULL, "train", &dep, 1), 0, "unknown dependency");
    char longname[100];
    memset(longname, 'a', sizeof longname - 1);
    longname[99] = '\0';
    cr_assert_eq(plan_add(p, MSG_TASK_EXPERT, longname, "train", NULL, 0), 0);
    cr_assert_eq(plan_add(p, MSG_TASK_EXPERT, "x", "a-capability-name-too-long", NULL, 0), 0);
    cr_assert(plan_finished(p), "an empty plan is finished");
    cr_assert_eq(plan_find(p, MSG_TASK_SEED, NULL), NULL);
    plan_destroy(&p);
}

Test(plan, a_pinned_task_runs_only_on_its_worker)
{
    plan_t *p = plan_new(0);
    uint64_t a = plan_add(p, MSG_TASK_EXPERT, "legal", "train", NULL, 0);
    uint64_t b = plan_add(p, MSG_TASK_SEED, NULL, "train", NULL, 0);
    cr_assert_eq(plan_pin(p, a, "w9"), 0);
    cr_assert_eq(plan_pin(p, 99, "w9"), RW_ENOTFOUND);
    cr_assert_eq(plan_next(p, "train", "w1")->id, b, "w1 may not run the pinned task");
    cr_assert_eq(plan_next(p, "train", NULL)->id, b);
    cr_assert_eq(plan_next(p, "train", "w9")->id, a, "its own worker gets it first");
    cr_assert(plan_runs_on(plan_task(p, a), "w9"));
    cr_assert_not(plan_runs_on(plan_task(p, a), "w1"));
    cr_assert(plan_runs_on(plan_task(p, b), "w1"));
    cr_assert_eq(plan_pin(p, a, NULL), 0);
    cr_assert_eq(plan_next(p, "train", "w1")->id, a, "unpinned: anyone");
    plan_destroy(&p);
}
