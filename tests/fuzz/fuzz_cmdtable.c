/* slotproxy - BSD-2-Clause
 *
 * libFuzzer target for the learned command table: the input is a COMMAND
 * reply as a (hostile or broken) server could send it. Parsing must fail
 * with a message or give a table whose every entry is usable: it merges
 * with the built-in table, intersects with itself, every name is found by
 * lookup, and key extraction on requests built from each entry stays
 * inside the request. The input is parsed from an exact-size heap copy so
 * ASan sees any read past its end.
 */
#include "build_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmdtable.h"
#include "command.h"
#include "resp.h"

#define FUZZ_CHECK(x) ((x) ? (void)0 : abort())
#define FUZZ_ARGS 12

/* Requests of every length up to FUZZ_ARGS for c, with arguments that
 * steer key specs (numbers, keywords); every key index must be an
 * argument of the request. */
static void
fuzz_keys(const struct command *top, const struct command *c)
{
    static const char *const words[] = {"2", "k", "STREAMS", "0", "1", "x"};
    char base[FUZZ_ARGS * 8];
    struct resp_arg argv[FUZZ_ARGS];
    int keys[FUZZ_ARGS * 2];
    uint32_t argc, i;
    size_t used = 0;

    for (i = 0; i < FUZZ_ARGS; i++) {
        const char *w = i == 0 ? "cmd" : (i == 1 && top != c)
                                             ? c->name
                                             : words[i % 6];
        size_t n = strlen(w) < 8 ? strlen(w) : 8;
        memcpy(base + used, w, n);
        argv[i].off = (uint32_t)used;
        argv[i].len = (uint32_t)n;
        used += n;
    }
    for (argc = 1; argc <= FUZZ_ARGS; argc++) {
        int n = command_get_keys(c, argc, argv, base, keys,
                                 (int)(sizeof(keys) / sizeof(keys[0])));
        FUZZ_CHECK(n >= -1);
        for (i = 0; n > 0 && i < (uint32_t)n; i++)
            FUZZ_CHECK(keys[i] >= 1 && (uint32_t)keys[i] < argc);
    }
}

static void
fuzz_table(const struct cmdtable *t)
{
    size_t i;
    uint16_t s;

    for (i = 0; i < cmdtable_count(t); i++) {
        const struct command *c = cmdtable_at(t, i);
        FUZZ_CHECK(cmdtable_lookup(t, c->name, strlen(c->name)) == c);
        /* Entries that are the built-in table's untouched: not fuzzed. */
        if (c->builtin != NULL && c->builtin->subcmds == c->subcmds &&
            c->builtin->keyspecs == c->keyspecs)
            continue;
        fuzz_keys(c, c);
        for (s = 0; s < c->nsubcmds; s++) {
            const struct command *sub = &c->subcmds[s];
            FUZZ_CHECK(command_lookup_sub(c, sub->name,
                                          strlen(sub->name)) == sub);
            fuzz_keys(c, sub);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    char err[256];
    struct cmdtable *t, *x, *m;
    struct cmdtable_names *names;
    const struct cmdtable *in[2];
    struct cmdtable_notes notes = {0};

    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    t = cmdtable_parse(copy, size, err, sizeof(err));
    free(copy);
    if (t == NULL) {
        FUZZ_CHECK(strncmp(err, "COMMAND reply: ", 15) == 0);
        return 0;
    }
    in[0] = in[1] = t;
    x = cmdtable_intersect(in, NULL, 2, &notes);
    FUZZ_CHECK(notes.n == 0 && cmdtable_count(x) == cmdtable_count(t));
    names = cmdtable_names_new();
    m = cmdtable_merge(x, names);
    cmdtable_free(x);
    cmdtable_free(t);
    fuzz_table(m);
    for (size_t i = 0; i < cmdtable_count(m); i++)
        FUZZ_CHECK(cmdtable_index(m, cmdtable_at(m, i)) <
                   cmdtable_index_limit());
    cmdtable_free(m);
    cmdtable_names_free(names);
    cmdtable_notes_free(&notes);
    return 0;
}
