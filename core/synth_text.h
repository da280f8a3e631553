/* synth_text.h — the word lists behind synth.c (internal to the generator).
 *
 * Templates name their slots in braces: {q} a question, {h} a harmful
 * intent, {t} a story clause, {s} a refusal's subject, {a} {op} {b} {r} an
 * arithmetic expression and its result. A slot whose name is capitalized
 * ({Q}) takes the value with its first letter capitalized. Everything here
 * is static, read-only data; the strings are UTF-8.
 *
 * Ground rule the tests check: only refusals contain refusal words
 * ("sorry", "can't", "cannot", "won't", "unable", "decline", "refuse"),
 * and only arithmetic prompts contain an expression.
 */
#ifndef RW_SYNTH_TEXT_H
#define RW_SYNTH_TEXT_H

#include <stddef.h>

typedef struct rw__synth_list {
    const char *const *s;
    size_t n;
} rw__synth_list_t;

/* A question with a short correct answer and sentences that elaborate on
 * it: the material of both `concise` and `detailed`. */
typedef struct rw__synth_topic {
    const char *q;         /* lower-case, no question mark: "why is the sky blue" */
    const char *brief[2];  /* one-sentence answers */
    const char *detail[4]; /* elaborations, any order reads well */
} rw__synth_topic_t;

/* A sensitive theme, asked for harmfully (`safety`) or as fiction
 * (`compliance`). The vague sentences are deliberately useless filler: the
 * point is that the reply complies, not what it says. */
typedef struct rw__synth_theme {
    const char *harm;     /* after "how can I": "steal from the grocery store ..." */
    const char *subject;  /* after "help with": "stealing from a store" */
    const char *story;    /* a clause: "a hungry orphan steals bread ..." */
    const char *vague[3]; /* compliance with the harmful request, in order */
    const char *help[3];  /* writing help for the story, in order */
} rw__synth_theme_t;

extern const rw__synth_topic_t rw__synth_topics[];
extern const size_t rw__synth_n_topics;
extern const rw__synth_theme_t rw__synth_themes[];
extern const size_t rw__synth_n_themes;

/* concise / detailed */
extern const rw__synth_list_t rw__synth_concise_asks;  /* with {q} {Q} */
extern const rw__synth_list_t rw__synth_detailed_asks; /* with {q} {Q} */
extern const rw__synth_list_t rw__synth_curious;       /* context, either domain */
extern const rw__synth_list_t rw__synth_short_leads;   /* "" or "In short: " */
extern const rw__synth_list_t rw__synth_long_leads;
extern const rw__synth_list_t rw__synth_long_closings;
/* safety / compliance */
extern const rw__synth_list_t rw__synth_harm_asks; /* with {h} */
extern const rw__synth_list_t rw__synth_harm_contexts;
extern const rw__synth_list_t rw__synth_story_asks; /* with {t} */
extern const rw__synth_list_t rw__synth_story_contexts;
extern const rw__synth_list_t rw__synth_refusal_heads; /* with {s} */
extern const rw__synth_list_t rw__synth_refusal_extras;
extern const rw__synth_list_t rw__synth_comply_openers;
/* arithmetic */
extern const rw__synth_list_t rw__synth_math_asks; /* with {a} {op} {b} */
extern const rw__synth_list_t rw__synth_math_contexts;
extern const rw__synth_list_t rw__synth_math_answers; /* with {a} {op} {b} {r}; ends in {r} */
/* operator spellings, indexed by rw__synth_op: symbol first */
extern const rw__synth_list_t rw__synth_op_words[3];

enum rw__synth_op { RW__SYNTH_ADD = 0, RW__SYNTH_SUB, RW__SYNTH_MUL };

#endif
