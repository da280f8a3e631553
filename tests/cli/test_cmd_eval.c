/* test_cmd_eval.c — `rewire eval`: per-domain reports of a model and of the
 * longer-reply rule, text and JSON; missing or corrupt model files exit 1
 * with a clear message; bad usage exits 2. Runs the built binary. */
#include "cli_fixture.h"

TestSuite(cmd_eval, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

Test(cmd_eval, reports_every_domain_and_the_totals)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 4"));
    json_t *r = rw_ok(1, "eval --model m.safetensors --data syn.jsonl --json");
    cr_assert_str_eq(json_string_value(json_object_get(r, "split")), "eval");
    cr_assert_str_eq(json_string_value(json_object_get(r, "kind")), "pairs");
    json_t *doms = json_object_get(r, "domains");
    cr_assert_eq(json_array_size(doms), 5);
    double n = 0, correct = 0, best = 0;
    size_t i;
    json_t *d;
    json_array_foreach(doms, i, d)
    {
        n += num(d, "pairs");
        correct += num(d, "pairs") * num(d, "accuracy");
        best = num(d, "accuracy") > best ? num(d, "accuracy") : best;
        cr_assert(json_is_number(json_object_get(d, "margin")));
    }
    cr_assert_eq(n, num(r, "pairs"));
    cr_assert_float_eq(correct / n, num(r, "accuracy"), 1e-4);
    cr_assert_geq(best, 0.8, "some domain is learnable: best %.3f", best);
    json_decref(r);
    /* the train split is larger, and a domain can be picked */
    r = rw_ok(1, "eval --model m.safetensors --data syn.jsonl --split train --domain safety "
                 "--json");
    cr_assert_eq(json_array_size(json_object_get(r, "domains")), 1);
    cr_assert_gt(num(r, "pairs"), 60);
    json_decref(r);
    char *out;
    cr_assert_eq(rw(&out, NULL, "eval --model m.safetensors --data syn.jsonl"), 0);
    cr_assert(strstr(out, "safety") && strstr(out, "mean of domains") && strstr(out, "accuracy"),
              "%s", out);
    free(out);
}

Test(cmd_eval, longer_reply_rule_needs_no_model)
{
    gen_data();
    json_t *r = rw_ok(1, "eval --rule longer --data syn.jsonl --split all --json");
    cr_assert_eq(num(r, "pairs"), 500);
    /* the synthetic domains are built so that length decides them outright */
    cr_assert_float_eq(num(report_domain(r, "detailed"), "accuracy"), 1.0, 1e-9);
    cr_assert_float_eq(num(report_domain(r, "concise"), "accuracy"), 0.0, 1e-9);
    json_decref(r);
}

Test(cmd_eval, router_is_judged_on_routing)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out r.safetensors --variant router " TINY
                         " --epochs 2"));
    json_t *r = rw_ok(1, "eval --model r.safetensors --data syn.jsonl --json");
    cr_assert_str_eq(json_string_value(json_object_get(r, "kind")), "routing");
    cr_assert_str_eq(json_string_value(json_object_get(r, "variant")), "router");
    cr_assert_eq(json_array_size(json_object_get(r, "domains")), 5);
    json_decref(r);
}

Test(cmd_eval, missing_or_corrupt_model_exits_1)
{
    gen_data();
    char *err;
    cr_assert_eq(rw(NULL, &err, "eval --model nothere.safetensors --data syn.jsonl"), 1);
    cr_assert(strstr(err, "nothere.safetensors") && strstr(err, "No such file"), "%s", err);
    free(err);
    const char junk[] = "\x10\x00\x00\x00\x00\x00\x00\x00{not json at all";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "junk.safetensors"), junk, sizeof junk - 1), 0);
    cr_assert_eq(rw(NULL, &err, "eval --model junk.safetensors --data syn.jsonl"), 1);
    cr_assert(strstr(err, "cannot load model junk.safetensors"), "%s", err);
    free(err);
    /* a good file cut short */
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --steps 2"));
    size_t n;
    char *whole = rwt_read_file(rwt_path(rwt_dir, "m.safetensors"), &n);
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "cut.safetensors"), whole, n / 2), 0);
    free(whole);
    cr_assert_eq(rw(NULL, &err, "eval --model cut.safetensors --data syn.jsonl"), 1);
    cr_assert(strstr(err, "cut.safetensors") && strstr(err, "damaged"), "%s", err);
    free(err);
    /* no pair to judge is no accuracy: an error, not 0.0000 */
    char *train_only = NULL;
    size_t tn;
    char *all = rwt_read_file(rwt_path(rwt_dir, "syn.jsonl"), &tn);
    train_only = calloc(1, tn + 1);
    for (char *save = NULL, *l = strtok_r(all, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strstr(l, "\"split\":\"train\""))
            strcat(strcat(train_only, l), "\n");
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "tr.jsonl"), train_only, strlen(train_only)), 0);
    free(all), free(train_only);
    cr_assert_eq(rw(NULL, &err, "eval --model m.safetensors --data tr.jsonl"), 1);
    cr_assert(strstr(err, "no pair of the eval split to judge"), "%s", err);
    free(err);
    /* a tokenizer file is no model */
    json_decref(rw_ok(0, "tokenizer train syn.jsonl -o tok.json --vocab 1000"));
    cr_assert_eq(rw(NULL, &err, "eval --model tok.json --data syn.jsonl"), 1);
    free(err);
}

Test(cmd_eval, bad_usage_exits_2)
{
    const char *bad[] = {
        "eval --data x.jsonl",
        "eval --model m --rule longer --data x.jsonl",
        "eval --model m",
        "eval --rule shorter --data x.jsonl",
        "eval --model m --data x.jsonl --split test",
        "eval --model m --data x.jsonl --nope",
        "eval --rule longer --base b --data x.jsonl",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err;
        int st = rw(NULL, &err, "%s", bad[i]);
        cr_assert_eq(st, 2, "'%s' exited %d", bad[i], st);
        cr_assert(strstr(err, "rewire eval: "), "%s", err);
        free(err);
    }
}
