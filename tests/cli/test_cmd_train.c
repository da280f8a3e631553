/* test_cmd_train.c — `rewire train`: every variant trains on the synthetic
 * domains in about a second and beats chance where the data is learnable;
 * an interrupted and resumed run ends with the uninterrupted run's weights;
 * bad usage exits 2. Runs the built binary. */
#include "cli_fixture.h"

#include <sys/stat.h>
#include <unistd.h>

TestSuite(cmd_train, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

Test(cmd_train, dense_model_learns_the_learnable_domains)
{
    gen_data();
    json_t *r = rw_ok(1, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 4 --json");
    cr_assert_str_eq(json_string_value(json_object_get(r, "variant")), "dense");
    cr_assert_eq(num(r, "train_pairs") + num(r, "eval_pairs"), 500);
    cr_assert_gt(num(r, "parameters"), 1000);
    cr_assert_gt(num(r, "pairs_per_s"), 0);
    cr_assert_gt(num(r, "gflops"), 0);
    json_t *ev = json_object_get(r, "eval");
    cr_assert_eq(json_array_size(json_object_get(ev, "domains")), 5);
    /* refusals over compliance is one word away: learnt in a few epochs */
    double safety = num(report_domain(ev, "safety"), "accuracy");
    cr_assert_geq(safety, 0.8, "safety accuracy %.3f", safety);
    cr_assert_gt(num(ev, "accuracy"), 0.6);
    json_decref(r);
    struct stat st;
    cr_assert_eq(stat(rwt_path(rwt_dir, "m.safetensors.tmp"), &st), -1, "no temporary left");
}

Test(cmd_train, logs_steps_and_evaluations)
{
    gen_data();
    char *out, *err;
    cr_assert_eq(rw(&out, &err,
                    "train --data syn.jsonl --out m.safetensors " TINY
                    " --steps 20 --log-every 5 --eval-every 10"),
                 0);
    const char *want[] = {"step 5 ", "step 20 ", "loss ",          "acc ",
                          "pairs/s", "GFLOP/s",  "eval at step 10"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(err, want[i]), "no '%s' in the log:\n%s", want[i], err);
    cr_assert(strstr(out, "wrote m.safetensors") && strstr(out, "mean of domains"), "%s", out);
    free(out);
    free(err);
}

Test(cmd_train, one_domain_and_a_branch_from_the_baseline)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out base.safetensors " TINY " --epochs 2"));
    json_t *r = rw_ok(1, "train --data syn.jsonl --out one.safetensors --domain safety "
                         "--init base.safetensors --epochs 2 --threads 2 --json");
    cr_assert_eq(json_array_size(json_object_get(r, "domains")), 1);
    cr_assert_lt(num(r, "train_pairs"), 100, "safety alone: 100 pairs, some held out");
    cr_assert_str_eq(json_string_value(json_object_get(r, "variant")), "dense");
    json_t *ev = json_object_get(r, "eval");
    cr_assert_eq(json_array_size(json_object_get(ev, "domains")), 1);
    cr_assert_geq(num(ev, "accuracy"), 0.8);
    json_decref(r);
}

Test(cmd_train, router_learns_the_domain_of_a_prompt)
{
    gen_data();
    json_t *r = rw_ok(1, "train --data syn.jsonl --out router.safetensors --variant router " TINY
                         " --epochs 6 --json");
    json_t *ev = json_object_get(r, "eval");
    cr_assert_str_eq(json_string_value(json_object_get(ev, "kind")), "routing");
    cr_assert_eq(json_array_size(json_object_get(ev, "domains")), 5);
    cr_assert_geq(num(ev, "accuracy"), 0.8, "routing accuracy %.3f", num(ev, "accuracy"));
    json_decref(r);
}

Test(cmd_train, moe_variant_trains)
{
    gen_data();
    json_t *r = rw_ok(1, "train --data syn.jsonl --out moe.safetensors --variant moe " TINY
                         " --experts 4 --epochs 2 --json");
    cr_assert_eq(num(json_object_get(r, "config"), "n_experts"), 4);
    cr_assert_gt(num(json_object_get(r, "eval"), "accuracy"), 0.5);
    json_decref(r);
}

Test(cmd_train, moe_with_prompt_gates_routes_by_the_prompt)
{
    gen_data();
    json_t *r = rw_ok(1, "train --data syn.jsonl --out moe.safetensors --variant moe " TINY
                         " --gate prompt --gate-coef 1 --epochs 2 --json");
    json_t *cfg = json_object_get(r, "config");
    cr_assert_str_eq(json_string_value(json_object_get(cfg, "gate_input")), "prompt");
    cr_assert_gt(num(json_object_get(r, "eval"), "accuracy"), 0.5);
    json_decref(r);
}

Test(cmd_train, lora_adapter_on_a_trained_base)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out base.safetensors " TINY " --epochs 2"));
    json_t *r = rw_ok(1, "train --data syn.jsonl --out ad.safetensors --variant lora "
                         "--base base.safetensors --rank 4 --domain concise --epochs 6 "
                         "--lr 3e-3 --threads 2 --json");
    cr_assert(json_object_get(r, "lora"));
    cr_assert_lt(num(r, "parameters"), num(r, "base_parameters"));
    json_decref(r);
    /* eval finds the base through the path the adapter records */
    json_t *ev = rw_ok(1, "eval --model ad.safetensors --data syn.jsonl --domain concise --json");
    cr_assert_str_eq(json_string_value(json_object_get(ev, "variant")), "lora");
    cr_assert_geq(num(ev, "accuracy"), 0.6, "adapter accuracy %.3f", num(ev, "accuracy"));
    json_decref(ev);
    /* on another base it refuses */
    json_decref(rw_ok(0, "train --data syn.jsonl --out other.safetensors " TINY " --steps 3"));
    char *err;
    cr_assert_eq(rw(NULL, &err,
                    "eval --model ad.safetensors --base other.safetensors "
                    "--data syn.jsonl"),
                 1);
    cr_assert(strstr(err, "checksum") || strstr(err, "another base"), "%s", err);
    free(err);
}

Test(cmd_train, resumed_run_ends_with_the_uninterrupted_weights)
{
    gen_data();
    json_t *a = rw_ok(1, "train --data syn.jsonl --out a.safetensors " TINY " --steps 24 --json");
    char *out, *err;
    cr_assert_eq(rw(&out, &err,
                    "train --data syn.jsonl --out b.safetensors " TINY
                    " --steps 24 --checkpoint-every 5 --stop-after 13 --json"),
                 0);
    cr_assert(strstr(err, "--resume b.safetensors.ckpt"), "%s", err);
    json_t *stop = json_loads(out, 0, NULL); /* --json: one object, stopped or not */
    cr_assert_not_null(stop, "not JSON: '%s'", out);
    cr_assert_eq(json_integer_value(json_object_get(stop, "step")), 13);
    json_decref(stop);
    struct stat st;
    cr_assert_eq(stat(rwt_path(rwt_dir, "b.safetensors"), &st), -1, "stopped: no output yet");
    free(out);
    free(err);
    json_t *b = rw_ok(1, "train --data syn.jsonl --out b.safetensors --resume "
                         "b.safetensors.ckpt --threads 2 --json");
    cr_assert_str_eq(json_string_value(json_object_get(a, "fingerprint")),
                     json_string_value(json_object_get(b, "fingerprint")));
    size_t na, nb;
    char *fa = rwt_read_file(rwt_path(rwt_dir, "a.safetensors"), &na);
    char *fb = rwt_read_file(rwt_path(rwt_dir, "b.safetensors"), &nb);
    cr_assert(na == nb && memcmp(fa, fb, na) == 0, "the two files differ");
    free(fa);
    free(fb);
    json_decref(a);
    json_decref(b);
}

/* A resumed run reads the batches the interrupted one would have only on
 * the same train pairs: other data is refused, not trained on silently. */
Test(cmd_train, a_resume_on_other_data_is_refused)
{
    gen_data();
    json_decref(rw_ok(0, "data gen --pairs-per-domain 100 --seed 8 -o other.jsonl"));
    json_decref(
        rw_ok(0, "train --data syn.jsonl --out r.safetensors " TINY " --steps 10 --stop-after 3"));
    char *err =
        rw_exits(1, "train --data other.jsonl --out r.safetensors --resume r.safetensors.ckpt");
    cr_assert(strstr(err, "r.safetensors.ckpt was trained on other data") &&
                  strstr(err, "the train pairs of syn.jsonl") && strstr(err, "the same --data"),
              "%s", err);
    cr_assert_null(strstr(err, "resuming"), "%s", err);
    free(err);
    struct stat st;
    cr_assert_eq(stat(rwt_path(rwt_dir, "r.safetensors"), &st), -1, "it trained anyway");
    /* the same pairs under another name are the same data */
    size_t n;
    char *syn = rwt_read_file(rwt_path(rwt_dir, "syn.jsonl"), &n);
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "copy.jsonl"), syn, n), 0);
    free(syn);
    json_decref(
        rw_ok(0, "train --data copy.jsonl --out r.safetensors --resume r.safetensors.ckpt"));
}

/* A checkpoint written before the fingerprint still resumes, saying that
 * it cannot check the data. */
Test(cmd_train, a_checkpoint_without_a_data_fingerprint_still_resumes)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out old.safetensors " TINY
                         " --steps 10 --stop-after 3"));
    /* as an older rewire wrote it: the key blanked out of rewire.extra,
     * leaving the header's length (and every offset) as it was */
    size_t n;
    const char *path = rwt_path(rwt_dir, "old.safetensors.ckpt");
    char *f = rwt_read_file(path, &n);
    const char key[] = ",\\\"data_fingerprint\\\":\\\"";
    char *k = memmem(f, n, key, sizeof key - 1);
    cr_assert_not_null(k, "no fingerprint in the checkpoint");
    size_t len = sizeof key - 1 + 16 + 2; /* 16 hex digits and the closing \" */
    cr_assert_eq(memcmp(k + len - 2, "\\\"", 2), 0);
    memset(k, ' ', len);
    cr_assert_eq(rwt_write_file(path, f, n), 0);
    free(f);
    char *err =
        rw_exits(0, "train --data syn.jsonl --out old.safetensors --resume old.safetensors.ckpt");
    cr_assert(strstr(err, "no fingerprint of its training data") &&
                  strstr(err, "resumed at step 3"),
              "%s", err);
    free(err);
}

/* A run that cannot fit in memory is refused before any work, naming what
 * it needs and what to lower (it used to abort allocating 73 GB, after
 * training the tokenizer). Petabytes: more than any machine running this. */
Test(cmd_train, a_run_too_big_for_memory_is_a_usage_error_up_front)
{
    gen_data();
    char *out, *err;
    int st = rw(&out, &err,
                "train --data syn.jsonl --out m.safetensors --max-len 8192 --batch 4096 "
                "--layers 16 --heads 64 --vocab 1000 --steps 1 --json");
    cr_assert_eq(st, 2, "exit %d:\n%s", st, err);
    cr_assert(strstr(err, "training needs about ") && strstr(err, " PB of memory") &&
                  strstr(err, "more than this machine's") && strstr(err, "lower --batch") &&
                  strstr(err, "--max-len"),
              "%s", err);
    cr_assert_null(strstr(err, "tokenizer:"), "the tokenizer was trained first:\n%s", err);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert(o && strstr(json_string_value(json_object_get(o, "error")), "of memory"), "%s", out);
    json_decref(o);
    free(out);
    free(err);
}

/* A shape the model cannot take is a usage error before the tokenizer is
 * trained, in the options' words (it was exit 1 after training it, saying
 * "invalid configuration: n_heads = 2"). */
Test(cmd_train, an_invalid_shape_is_a_usage_error_up_front)
{
    gen_data();
    static const struct {
        const char *args, *says;
    } cases[] = {
        {"--d-model 33 --heads 2", "--d-model (33) must be a multiple of --heads (2)"},
        {"--d-model 8192 --layers 64", "parameters, over the limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err = rw_exits(2, "train --data syn.jsonl --out m.safetensors --vocab 1000 %s",
                             cases[i].args);
        cr_assert(strstr(err, cases[i].says) && strstr(err, "--help"), "%s", err);
        cr_assert_null(strstr(err, "tokenizer:"), "the tokenizer was trained first:\n%s", err);
        free(err);
    }
    /* an adapter that does not fit its base, before the data is tokenized */
    json_decref(rw_ok(0, "train --data syn.jsonl --out base.safetensors " TINY " --steps 2"));
    char *err = rw_exits(2, "train --data syn.jsonl --out ad.safetensors --variant lora --base "
                            "base.safetensors --rank 64");
    cr_assert(strstr(err, "rank (64) must be from 1 to the base's d_model (32)"), "%s", err);
    cr_assert_null(strstr(err, "tokenized"), "%s", err);
    free(err);
}

Test(cmd_train, bad_usage_exits_2)
{
    gen_data();
    const char *bad[] = {
        "train --out m.safetensors",
        "train --data syn.jsonl",
        "train --data syn.jsonl --out m --bogus",
        "train --data syn.jsonl --out m --variant huge",
        "train --data syn.jsonl --out m --epochs 2 --steps 5",
        "train --data syn.jsonl --out m --variant lora",
        "train --data syn.jsonl --out m --d-model x",
        "train --data syn.jsonl --out m --lr",
        "train --data syn.jsonl --out m --rank 4",
        "train --data syn.jsonl --out m --gate prompt",
        "train --data syn.jsonl --out m --variant moe --gate words",
        "train --data syn.jsonl --out m --resume m.ckpt --d-model 64",
        "train --data syn.jsonl --out m --resume m.ckpt --seed 5",
        "train --data syn.jsonl --out m --resume m.ckpt --weight-decay 0.1",
        "train --data syn.jsonl --out m --init m.safetensors --experts 4",
        "train --data syn.jsonl --out m --variant moe --experts 2 --top-k 5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *err;
        int st = rw(NULL, &err, "%s", bad[i]);
        cr_assert_eq(st, 2, "'%s' exited %d", bad[i], st);
        cr_assert(strstr(err, "rewire train: ") && strstr(err, "--help"), "%s", err);
        free(err);
    }
    char *out;
    cr_assert_eq(rw(&out, NULL, "train --help"), 0);
    cr_assert(strstr(out, "usage: rewire train") && strstr(out, "--variant"));
    free(out);
}

Test(cmd_train, a_missing_domain_or_init_fails_clearly)
{
    gen_data();
    char *err;
    cr_assert_eq(rw(NULL, &err, "train --data syn.jsonl --out m " TINY " --domain nope"), 1);
    cr_assert(strstr(err, "nope"), "%s", err);
    free(err);
    cr_assert_eq(rw(NULL, &err, "train --data syn.jsonl --out m --init missing.safetensors"), 1);
    cr_assert(strstr(err, "missing.safetensors") && strstr(err, "No such file"), "%s", err);
    free(err);
    /* an --out that cannot be written is said before any training */
    cr_assert_eq(rw(NULL, &err, "train --data syn.jsonl --out . " TINY), 1);
    cr_assert(strstr(err, "cannot write .: it is a directory"), "%s", err);
    cr_assert_null(strstr(err, "step 1"), "it trained first:\n%s", err);
    free(err);
    cr_assert_eq(rw(NULL, &err, "train --data syn.jsonl --out no/such/dir/m " TINY), 1);
    cr_assert(strstr(err, "cannot write no/such/dir/m: No such file"), "%s", err);
    free(err);
    /* a data file that cannot be read fails the run, though others can */
    cr_assert_eq(rw(NULL, &err, "train --data syn.jsonl --data typo.jsonl --out m " TINY), 1);
    cr_assert(strstr(err, "typo.jsonl: cannot open") &&
                  strstr(err, "1 of the 2 data file(s) unreadable or cut short"),
              "%s", err);
    cr_assert_null(strstr(err, "step 1"), "it trained on the rest:\n%s", err);
    free(err);
    cr_assert_eq(rw(NULL, &err, "eval --rule longer --data syn.jsonl --data typo.jsonl"), 1);
    free(err);
    cr_assert_neq(access(rwt_path(rwt_dir, "m"), F_OK), 0);
}

/* Ctrl-C ends a run at the end of its step with the checkpoint to resume
 * from, and leaves no temporary file (it used to die mid-write). */
Test(cmd_train, ctrl_c_leaves_a_checkpoint_to_resume_and_no_temporary_file, .timeout = 120)
{
    gen_data();
    /* the shell that waits is not in rwt_dir: only the background job is */
    char log_path[700];
    snprintf(log_path, sizeof log_path, "%s/int.log", rwt_dir);
    int rc = rw(NULL, NULL,
                "train --data syn.jsonl --out int.safetensors " TINY
                " --steps 100000 --log-every 1 --json >int.json 2>int.log & "
                "while ! grep -q ' step 3 ' '%s' 2>/dev/null; do sleep 0.05; done; "
                "pkill -INT -f '[r]ewire train --data syn.jsonl --out int'; wait $!",
                log_path);
    char *log = rwt_read_file(log_path, NULL);
    cr_assert_eq(rc, 130, "exit %d:\n%s", rc, log);
    cr_assert(strstr(log, "interrupted at step ") &&
                  strstr(log, "continue with --resume int.safetensors.ckpt"),
              "%s", log);
    free(log);
    /* --json: one object that says where to continue from */
    json_t *j = json_load_file(rwt_path(rwt_dir, "int.json"), 0, NULL);
    cr_assert_not_null(j, "no JSON object on stdout");
    cr_assert_str_eq(json_string_value(json_object_get(j, "stopped")), "interrupted");
    cr_assert_str_eq(json_string_value(json_object_get(j, "checkpoint")), "int.safetensors.ckpt");
    cr_assert_eq(json_integer_value(json_object_get(j, "exit")), 130);
    cr_assert_geq(json_integer_value(json_object_get(j, "step")), 3);
    json_decref(j);
    struct stat st;
    cr_assert_eq(stat(rwt_path(rwt_dir, "int.safetensors.ckpt"), &st), 0, "no checkpoint");
    cr_assert_eq(stat(rwt_path(rwt_dir, "int.safetensors"), &st), -1, "an output of a cut run");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tmp\\.'", rwt_dir);
    char *out = NULL;
    rwt_run(cmd, &out, NULL);
    cr_assert_eq(atoi(out), 0, "temporary files left: %s", out);
    free(out);
}

/* Before training starts (the tokenizer, tokenizing) there is nothing to
 * keep: a first Ctrl-C ends the run at once, with no checkpoint of a step. */
Test(cmd_train, ctrl_c_before_training_ends_the_run_at_once, .timeout = 120)
{
    cr_assert_eq(rw(NULL, NULL, "data gen --pairs-per-domain 20000 -o big.jsonl"), 0);
    char log_path[700];
    snprintf(log_path, sizeof log_path, "%s/early.log", rwt_dir);
    /* the window from "read" to the first step is the tokenizer's training
     * and the tokenizing of 100,000 pairs, most of a second */
    int rc = rw(NULL, NULL,
                "train --data big.jsonl --out early.safetensors --vocab 16384 --steps 5 "
                "--log-every 1 2>early.log & "
                "while ! grep -q 'read 100000 pairs' '%s' 2>/dev/null; do sleep 0.02; done; "
                "pkill -INT -f '[r]ewire train --data big.jsonl --out early'; wait $!",
                log_path);
    char *log = rwt_read_file(log_path, NULL);
    cr_assert_eq(rc, 130, "exit %d:\n%s", rc, log);
    cr_assert_null(strstr(log, " step 1 "), "a step ran after the Ctrl-C:\n%s", log);
    cr_assert_null(strstr(log, "interrupted at step"), "%s", log);
    free(log);
    struct stat st;
    cr_assert_eq(stat(rwt_path(rwt_dir, "early.safetensors.ckpt"), &st), -1, "a checkpoint");
    cr_assert_eq(stat(rwt_path(rwt_dir, "early.safetensors"), &st), -1, "an output");
}

/* With --json a command that fails still prints one JSON object on stdout,
 * which says so (scripts read stdout as JSON). */
Test(cmd_train, a_failure_under_json_is_a_json_object)
{
    char *out;
    cr_assert_eq(rw(&out, NULL, "train --data none.jsonl --out m.safetensors --json"), 1);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "not JSON: '%s'", out);
    cr_assert(json_is_false(json_object_get(o, "ok")), "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(o, "exit")), 1);
    cr_assert(strstr(json_string_value(json_object_get(o, "error")), "unreadable or cut short"),
              "the failure says why, not only on stderr: %s", out);
    json_decref(o);
    free(out);
    cr_assert_eq(rw(&out, NULL, "eval --model none.safetensors --data none.jsonl --json"), 1);
    o = json_loads(out, 0, NULL);
    cr_assert(strstr(json_string_value(json_object_get(o, "error")), "none.safetensors"), "%s",
              out);
    json_decref(o);
    free(out);
    cr_assert_eq(rw(&out, NULL, "train --data none.jsonl --json"), 2);
    o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "not JSON: '%s'", out);
    cr_assert(strstr(json_string_value(json_object_get(o, "error")), "--out"), "%s", out);
    json_decref(o);
    free(out);
}
