/* test_cmd_score.c — `rewire score`: one JSON line out per good input line,
 * in order and batched, with the bad lines reported and skipped; rewards
 * agree with eval's ranking; routers answer with a domain. Runs the built
 * binary. */
#include "cli_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

TestSuite(cmd_score, .init = rwt_dir_setup, .fini = rwt_dir_teardown);

/* Splits text into lines parsed as JSON objects; returns how many. */
static size_t parse_lines(char *text, json_t **lines, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max;
         l = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        lines[n] = json_loads(l, 0, &jerr);
        cr_assert(json_is_object(lines[n]), "output line %zu is not a JSON object: %s", n + 1, l);
        n++;
    }
    return n;
}

Test(cmd_score, scores_good_lines_and_skips_bad_ones)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 2"));
    const char *in = "{\"prompt\": \"Briefly, what is rain?\", \"response\": \"Water.\"}\n"
                     "{\"prompt\": \"no reply\"}\n"
                     "{\"prompt\": \"Why?\", \"chosen\": \"Because.\", \"rejected\": \"No.\", "
                     "\"id\": \"q7\"}\n"
                     "this is not json\n"
                     "\n"
                     "{\"prompt\": \"x\", \"chosen\": \"a\"}\n"
                     "[1, 2]\n"
                     "{\"prompt\": \"Say hi\", \"response\": \"Hi!\"}\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "in.jsonl"), in, strlen(in)), 0);
    char *out, *err;
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors --batch 2 < in.jsonl"), 1,
                 "bad lines were skipped: %s", err);
    json_t *lines[16];
    size_t n = parse_lines(out, lines, 16);
    cr_assert_eq(n, 3, "three good lines, three outputs:\n%s", out);
    cr_assert_eq(num(lines[0], "line"), 1);
    cr_assert(json_is_number(json_object_get(lines[0], "reward")));
    cr_assert_eq(num(lines[1], "line"), 3);
    cr_assert_str_eq(json_string_value(json_object_get(lines[1], "id")), "q7");
    cr_assert_float_eq(num(lines[1], "margin"),
                       num(lines[1], "chosen_reward") - num(lines[1], "rejected_reward"), 1e-5);
    cr_assert_eq(num(lines[2], "line"), 8);
    for (const char *const *w = (const char *const[]){"stdin:2: ", "stdin:4: not JSON", "stdin:6: ",
                                                      "stdin:7: not a JSON object", NULL};
         *w; w++)
        cr_assert(strstr(err, *w), "no '%s' in:\n%s", *w, err);
    cr_assert_null(strstr(err, "stdin:5:"), "a blank line is no input");
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
    free(out);
    free(err);
    /* with --json the failure is one more JSON line, not a block */
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors --json < in.jsonl"), 1, "%s", err);
    n = parse_lines(out, lines, 16);
    cr_assert_eq(n, 4, "three outputs and the failure, a line each:\n%s", out);
    cr_assert(json_is_false(json_object_get(lines[3], "ok")), "%s", out);
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
    free(out);
    free(err);
}

Test(cmd_score, rewards_rank_pairs_as_eval_does)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 3"));
    /* the eval pairs of syn.jsonl, as score input, in any batch size */
    size_t len;
    char *data = rwt_read_file(rwt_path(rwt_dir, "syn.jsonl"), &len);
    FILE *f = fopen(rwt_path(rwt_dir, "pairs.jsonl"), "w");
    size_t n_eval = 0;
    for (char *save = NULL, *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (strstr(l, "\"split\":\"eval\"") || strstr(l, "\"split\": \"eval\""))
            fprintf(f, "%s\n", l), n_eval++;
    fclose(f);
    free(data);
    cr_assert_gt(n_eval, 20);
    json_t *r = rw_ok(1, "eval --model m.safetensors --data syn.jsonl --json");
    char *out1, *out2;
    cr_assert_eq(rw(&out1, NULL, "score --model m.safetensors --batch 64 < pairs.jsonl"), 0);
    cr_assert_eq(rw(&out2, NULL, "score --model m.safetensors --batch 6 < pairs.jsonl"), 0);
    json_t *a[600], *b[600];
    size_t na = parse_lines(out1, a, 600), nb = parse_lines(out2, b, 600);
    cr_assert_eq(na, n_eval);
    cr_assert_eq(nb, n_eval);
    size_t right = 0;
    for (size_t i = 0; i < na; i++) {
        right += num(a[i], "margin") > 0;
        cr_assert_float_eq(num(a[i], "margin"), num(b[i], "margin"), 1e-4,
                           "batching changes "
                           "nothing");
        json_decref(a[i]);
        json_decref(b[i]);
    }
    cr_assert_float_eq((double)right / (double)na, num(r, "accuracy"), 1e-5,
                       "%zu/%zu right, eval says %f", right, na, num(r, "accuracy"));
    json_decref(r);
    free(out1);
    free(out2);
}

Test(cmd_score, router_names_a_domain_and_errors_are_clear)
{
    gen_data();
    json_decref(
        rw_ok(0, "train --data syn.jsonl --out r.safetensors --variant router " TINY " --steps 5"));
    const char *in = "{\"prompt\": \"What is 2 + 2?\"}\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "in.jsonl"), in, strlen(in)), 0);
    char *out, *err;
    cr_assert_eq(rw(&out, NULL, "score --model r.safetensors < in.jsonl"), 0);
    json_t *line[2];
    cr_assert_eq(parse_lines(out, line, 2), 1);
    const char *dom = json_string_value(json_object_get(line[0], "domain"));
    cr_assert(dom && strstr("concise detailed safety compliance arithmetic", dom), "%s", dom);
    double conf = num(line[0], "confidence");
    cr_assert(conf > 0.0 && conf <= 1.0);
    /* the whole distribution: one probability a domain, summing to 1, the
     * named domain's the largest and equal to the confidence */
    json_t *probs = json_object_get(line[0], "probs");
    cr_assert(json_is_object(probs));
    cr_assert_eq(json_object_size(probs), 5);
    double sum = 0;
    const char *k;
    json_t *v;
    json_object_foreach(probs, k, v)
    {
        cr_assert(json_is_real(v), "%s", k);
        cr_assert_leq(json_real_value(v), conf + 1e-9, "%s", k);
        sum += json_real_value(v);
    }
    cr_assert_float_eq(sum, 1.0, 1e-5);
    cr_assert_float_eq(json_real_value(json_object_get(probs, dom)), conf, 1e-7);
    json_decref(line[0]);
    free(out);
    cr_assert_eq(rw(NULL, &err, "score --model nothere.safetensors < in.jsonl"), 1);
    cr_assert(strstr(err, "nothere.safetensors") && strstr(err, "No such file"), "%s", err);
    free(err);
    cr_assert_eq(rw(NULL, &err, "score < in.jsonl"), 2);
    free(err);
    cr_assert_eq(rw(NULL, &err, "score --model r.safetensors extra.jsonl"), 2);
    cr_assert(strstr(err, "stdin"), "%s", err);
    free(err);
}

Test(cmd_score, lost_output_a_nul_and_an_overlong_line_are_said)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 1"));
    /* a NUL ends no line early: the line is not JSON */
    const char in[] = "{\"prompt\": \"p\", \"response\": \"r\"}\0junk\n"
                      "{\"prompt\": \"p\", \"response\": \"r\"}\n";
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "nul.jsonl"), in, sizeof in - 1), 0);
    char *out, *err;
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors < nul.jsonl"), 1, "%s", err);
    cr_assert(strstr(err, "stdin:1: not JSON"), "%s", err);
    cr_assert(strstr(out, "\"line\":2") && !strstr(out, "\"line\":1"), "%s", out);
    free(out), free(err);
    /* a line over 16 MiB is skipped, not parsed */
    size_t big = ((size_t)16 << 20) + 100;
    char *line = malloc(big + 128);
    int k = sprintf(line, "{\"prompt\": \"");
    memset(line + k, 'a', big);
    k += (int)big;
    k += sprintf(line + k, "\", \"response\": \"r\"}\n{\"prompt\": \"p\", \"response\": \"r\"}\n");
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "big.jsonl"), line, (size_t)k), 0);
    free(line);
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors < big.jsonl"), 1, "%s", err);
    cr_assert(strstr(err, "stdin:1: a line over the 16 MiB limit; skipped"), "%s", err);
    cr_assert(strstr(out, "\"line\":2"), "%s", out);
    free(out), free(err);
    /* stdin that cannot be read (a folder) is an error, not an empty input */
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors < ."), 1, "%s", err);
    cr_assert(strstr(err, "stdin: cannot read line 1: Is a directory"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out), free(err);
    /* scores that cannot be written are an error, not a success */
    cr_assert_neq(rw(NULL, &err, "score --model m.safetensors < nul.jsonl > /dev/full"), 0);
    cr_assert(strstr(err, "cannot write the output"), "%s", err);
    free(err);
}

/* `rewire score --model m.safetensors` with stdin a pipe of junk bytes
 * with no newline, then one good line. Returns the exit status, with the
 * peak RSS in MiB in *rss and stdout in *out (caller frees). */
static int score_stream(size_t junk, long *rss, char **out)
{
    int in[2];
    cr_assert_eq(pipe(in), 0);
    char outp[700];
    snprintf(outp, sizeof outp, "%s/stream.out", rwt_dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open("/dev/null", O_WRONLY);
        if (o < 0 || e < 0 || dup2(in[0], 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 ||
            chdir(rwt_dir) != 0)
            _exit(127);
        close(in[1]);
        execl(rwt_bin("rewire"), "rewire", "score", "--model", "m.safetensors", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    static char buf[1 << 16];
    memset(buf, 'a', sizeof buf);
    for (size_t sent = 0; sent < junk; sent += sizeof buf)
        if (write(in[1], buf, sizeof buf) != (ssize_t)sizeof buf)
            break;
    static const char good[] = "\n{\"prompt\": \"p\", \"response\": \"r\"}\n";
    ssize_t w = write(in[1], good, sizeof good - 1);
    (void)w;
    close(in[1]);
    signal(SIGPIPE, old);
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    *rss = ru.ru_maxrss / 1024;
    *out = rwt_read_file(outp, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A line over the limit is passed over as it streams in, never held: a
 * stdin of 256 MiB with no newline costs no more memory than a small one. */
Test(cmd_score, an_endless_line_is_not_held_in_memory, .timeout = 120)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 1"));
    long small, huge;
    char *out;
    cr_assert_eq(score_stream(0, &small, &out), 0); /* a blank line 1, then the good one */
    free(out);
    cr_assert_eq(score_stream((size_t)256 << 20, &huge, &out), 1);
    cr_assert(out && strstr(out, "\"line\":2"), "the good line after it is scored: %s", out);
    free(out);
    cr_assert_lt(huge, small + 64, "peak RSS %ld MiB for a 256 MiB line, %ld MiB for none", huge,
                 small);
}

/* With --json the error of a failed score is why it stopped: input cut off
 * (a gzip stream without its end) after a bad line is said as the cut, not
 * as "1 bad line(s) skipped", which would pass for a whole input. */
Test(cmd_score, a_read_error_after_a_bad_line_is_the_json_error)
{
    gen_data();
    json_decref(rw_ok(0, "train --data syn.jsonl --out m.safetensors " TINY " --epochs 1"));
    const char in[] = "not json\n{\"prompt\": \"p\", \"response\": \"r\"}\n";
    char gz[600];
    snprintf(gz, sizeof gz, "%s/in.jsonl.gz", rwt_dir);
    gzFile g = gzopen(gz, "wb");
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, in, sizeof in - 1), (int)(sizeof in - 1));
    cr_assert_eq(gzclose(g), Z_OK);
    size_t n;
    char *bytes = rwt_read_file(gz, &n);
    cr_assert(bytes && n > 8);
    /* without its trailer (CRC and size): every line inflates, then the end is missing */
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "cut.jsonl.gz"), bytes, n - 8), 0);
    free(bytes);
    char *out, *err;
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors --json < cut.jsonl.gz"), 1, "%s", err);
    cr_assert(strstr(err, "stdin: cannot read line 3: truncated gzip stream"), "%s", err);
    cr_assert(strstr(out, "\"line\":2"), "the good line is answered: %s", out);
    char *last = strrchr(out, '{');
    cr_assert(last && strstr(last, "\"ok\":false") && strstr(last, "truncated gzip stream"),
              "the JSON error names the cut: %s", out);
    free(out), free(err);
    /* a whole input with a bad line: its count is the error */
    cr_assert_eq(rwt_write_file(rwt_path(rwt_dir, "in.jsonl"), in, sizeof in - 1), 0);
    cr_assert_eq(rw(&out, &err, "score --model m.safetensors --json < in.jsonl"), 1, "%s", err);
    last = strrchr(out, '{');
    cr_assert(last && strstr(last, "1 scored, 1 bad line(s) skipped"), "%s", out);
    free(out), free(err);
}
