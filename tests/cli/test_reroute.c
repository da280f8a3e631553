/* scripts/reroute.py: per-domain accuracy of a bundle's models under another
 * routing, on hand-made scores whose answers are worked out below. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

TestSuite(reroute, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

/* Two domains, two held-out pairs each; pair i's margins under model a and
 * model b, and the route of each pair with its probabilities. */
static void write_inputs(int with_probs)
{
    const char *pairs = "{\"domain\":\"a\"}\n{\"domain\":\"a\"}\n{\"domain\":\"b\"}\n"
                        "{\"domain\":\"b\"}\n";
    const char *sa = "{\"margin\":1}\n{\"margin\":-1}\n{\"margin\":1}\n{\"margin\":-0.2}\n";
    const char *sb = "{\"margin\":-1}\n{\"margin\":1}\n{\"margin\":1}\n{\"margin\":1}\n";
    const char *rt = with_probs ? "{\"domain\":\"a\",\"probs\":{\"a\":0.9,\"b\":0.1}}\n"
                                  "{\"domain\":\"b\",\"probs\":{\"a\":0.3,\"b\":0.7}}\n"
                                  "{\"domain\":\"b\",\"probs\":{\"a\":0.2,\"b\":0.8}}\n"
                                  "{\"domain\":\"a\",\"probs\":{\"a\":0.6,\"b\":0.4}}\n"
                                : "{\"domain\":\"a\"}\n{\"domain\":\"b\"}\n{\"domain\":\"b\"}\n"
                                  "{\"domain\":\"a\"}\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "pairs.jsonl"), pairs, strlen(pairs)), 0);
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "a.jsonl"), sa, strlen(sa)), 0);
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "b.jsonl"), sb, strlen(sb)), 0);
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "route.jsonl"), rt, strlen(rt)), 0);
}

/* Runs the script in rwt_dir with extra arguments; returns its exit status. */
static int reroute(const char *extra, char **out, char **err)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && /usr/bin/python3 %s/scripts/reroute.py --pairs pairs.jsonl --route "
             "route.jsonl --scores a=a.jsonl --scores b=b.jsonl %s",
             rwt_dir, RW_SOURCE_DIR, extra);
    return rwt_run(cmd, out, err);
}

/* The numbers on the output line that starts with label. */
static int row(const char *out, const char *label, double *x, int n)
{
    for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, label, strlen(label)) || l[strlen(label)] != ' ')
            continue;
        const char *p = l + strlen(label);
        int got = 0;
        char *end;
        while (got < n) {
            double v = strtod(p, &end);
            if (end == p)
                break;
            x[got++] = v, p = end;
        }
        return got;
    }
    return 0;
}

Test(reroute, routes_each_pair_by_its_route_and_by_its_true_domain)
{
    write_inputs(0);
    char *out = NULL, *err = NULL;
    cr_assert_eq(reroute("--cross", &out, &err), 0, "%s", err);
    double x[4];
    /* a: pair 1 goes to a (+1), pair 2 to b (+1); true domain: +1, -1 */
    cr_assert_eq(row(out, "a", x, 3), 3, "%s", out);
    cr_assert_float_eq(x[0], 2, 1e-9);
    cr_assert_float_eq(x[1], 1.0, 1e-9);
    cr_assert_float_eq(x[2], 0.5, 1e-9);
    /* b: pair 3 goes to b (+1), pair 4 to a (-0.2); true domain: +1, +1 */
    cr_assert_eq(row(out, "b", x, 3), 3);
    cr_assert_float_eq(x[1], 0.5, 1e-9);
    cr_assert_float_eq(x[2], 1.0, 1e-9);
    cr_assert_eq(row(out, "mean", x, 2), 2);
    cr_assert_float_eq(x[0], 0.75, 1e-9);
    cr_assert_float_eq(x[1], 0.75, 1e-9);
    cr_assert_eq(row(out, "route accuracy", x, 1), 1);
    cr_assert_float_eq(x[0], 0.5, 1e-9);
    /* --cross: model b on domain a's pairs (-1, +1) and on b's (+1, +1) */
    const char *cross = strstr(out, "accuracy of each model");
    cr_assert(cross, "%s", out);
    cr_assert_eq(row(cross, "b", x, 2), 2);
    cr_assert_float_eq(x[0], 0.5, 1e-9);
    cr_assert_float_eq(x[1], 1.0, 1e-9);
    /* and where each domain's pairs went: half of b's to a */
    const char *conf = strstr(out, "share of each domain");
    cr_assert(conf, "%s", out);
    cr_assert_eq(row(conf, "b", x, 2), 2);
    cr_assert_float_eq(x[0], 0.5, 1e-9);
    cr_assert_float_eq(x[1], 0.5, 1e-9);
    free(out);
    free(err);
}

Test(reroute, soft_weights_every_model_by_the_routers_probabilities)
{
    write_inputs(1);
    char *out = NULL, *err = NULL;
    cr_assert_eq(reroute("--soft", &out, &err), 0, "%s", err);
    double x[3];
    /* pair 4: 0.6 * -0.2 + 0.4 * 1 > 0, where picking a alone was wrong */
    cr_assert_eq(row(out, "b", x, 3), 3, "%s", out);
    cr_assert_float_eq(x[1], 1.0, 1e-9);
    cr_assert_eq(row(out, "mean", x, 2), 2);
    cr_assert_float_eq(x[0], 1.0, 1e-9);
    free(out);
    free(err);
}

Test(reroute, refuses_inputs_that_do_not_line_up)
{
    write_inputs(0);
    char *out = NULL, *err = NULL;
    cr_assert_neq(reroute("--soft", &out, &err), 0);
    cr_assert(strstr(err, "probs"), "%s", err);
    free(out);
    free(err);
    const char *short_route = "{\"domain\":\"a\"}\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "route.jsonl"), short_route, strlen(short_route)),
                 0);
    cr_assert_neq(reroute("", &out, &err), 0);
    cr_assert(strstr(err, "route.jsonl has 1 routes for 4 pairs"), "%s", err);
    free(out);
    free(err);
    /* a route to a domain no model was scored for, and pairs of one */
    const char *stray = "{\"domain\":\"a\"}\n{\"domain\":\"c\"}\n{\"domain\":\"b\"}\n"
                        "{\"domain\":\"a\"}\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "route.jsonl"), stray, strlen(stray)), 0);
    cr_assert_neq(reroute("", &out, &err), 0);
    cr_assert(strstr(err, "route.jsonl:2: routed to 'c', which has no --scores"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "pairs.jsonl"), stray, strlen(stray)), 0);
    cr_assert_neq(reroute("", &out, &err), 0);
    cr_assert(strstr(err, "pairs.jsonl:2: domain 'c' has no --scores"), "%s", err);
    free(out);
    free(err);
}
