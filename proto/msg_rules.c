/* msg_rules.c — the checks that span fields of one message.
 *
 * The table marks a message RULE when one field constrains another (a step
 * within its steps, one probability per prompt and domain); msg_check runs
 * the message's rule after every field has passed its own checks, so a rule
 * may trust each field alone.
 */
#include "msg_int.h"

#include "err.h"

#include <string.h>

static int rule_fail(const msg_t *m, char *why, const char *text)
{
    const msg_desc_t *d = msg_desc(m->type);
    return msg__fail(why, RW_EFIELD, d, NULL, "%s", text);
}

int msg__rule_hello(const msg_t *m, char *why)
{
    const msg_hello_t *h = &m->hello;
    int with = (h->domain != NULL) + h->has_data_pairs + h->has_data_bytes + h->has_data_checksum +
               h->has_data_upload;
    if (with != 0 && with != 5)
        return rule_fail(
            m, why, "domain, data_pairs, data_bytes, data_checksum and data_upload go together");
    return 0;
}

int msg__rule_lease(const msg_t *m, char *why)
{
    const msg_lease_t *l = &m->lease;
    bool per_domain =
        l->kind == MSG_TASK_EXPERT || l->kind == MSG_TASK_DOMAIN_RM || l->kind == MSG_TASK_ADAPTER;
    if (per_domain && !l->domain)
        return rule_fail(m, why, "an expert, domain_rm or adapter task needs a domain");
    return 0;
}

int msg__rule_progress(const msg_t *m, char *why)
{
    if (m->progress.step > m->progress.steps)
        return rule_fail(m, why, "step is past steps");
    return 0;
}

int msg__rule_train_req(const msg_t *m, char *why)
{
    const msg_train_req_t *t = &m->train_req;
    if (t->kind != MSG_TASK_ROUTER && t->kind != MSG_TASK_ROUTER_ADAPTER &&
        t->kind != MSG_TASK_GATES)
        return rule_fail(m, why, "the router service trains router, router_adapter or gates");
    if (t->shards.n != t->domains.n)
        return rule_fail(m, why, "one shard per domain");
    return 0;
}

int msg__rule_route_rep(const msg_t *m, char *why)
{
    const msg_route_rep_t *r = &m->route_rep;
    for (size_t i = 0; i < r->choice.n; i++)
        if (r->choice.v[i] >= r->domains.n)
            return rule_fail(m, why, "a choice is not a domain index");
    if (r->probs.n / r->domains.n != r->choice.n || r->probs.n % r->domains.n != 0)
        return rule_fail(m, why, "probs is not prompts x domains");
    return 0;
}

int msg__rule_score_req(const msg_t *m, char *why)
{
    if (m->score_req.prompts.n != m->score_req.responses.n)
        return rule_fail(m, why, "prompts and responses differ in number");
    return 0;
}

int msg__rule_score_rep(const msg_t *m, char *why)
{
    const msg_score_rep_t *s = &m->score_rep;
    if (s->domains.n > 0 && s->domains.n != s->rewards.n)
        return rule_fail(m, why, "domains and rewards differ in number");
    return 0;
}

int msg__rule_art_ack(const msg_t *m, char *why)
{
    const msg_art_ack_t *a = &m->art_ack;
    if (a->ok && (a->has_code || a->reason))
        return rule_fail(m, why, "a successful ack has no code or reason");
    if (!a->ok && (!a->has_code || !a->reason))
        return rule_fail(m, why, "a refusal needs a code and a reason");
    return 0;
}

int msg__rule_health_rep(const msg_t *m, char *why)
{
    const msg_health_rep_t *h = &m->health_rep;
    if ((h->worker != NULL) != h->has_worker_live)
        return rule_fail(m, why, "worker and worker_live go together");
    if (h->has_tasks_done != h->has_tasks_total ||
        (h->has_tasks_done && h->tasks_done > h->tasks_total))
        return rule_fail(m, why, "tasks_done comes with tasks_total and is at most it");
    return 0;
}
