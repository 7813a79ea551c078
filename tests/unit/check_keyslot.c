/* slotproxy - BSD-2-Clause
 *
 * Unit tests for keyslot.c: published CRC16-XMODEM check values, the
 * hash-tag edge cases spelled out as literals, and every vector that
 * scripts/gen_keyslot_vectors.py recorded from a real redis-server.
 */
#include "build_config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyslot.h"

#ifndef SP_TESTDATA
#error "SP_TESTDATA must name the tests/unit/data directory"
#endif

#define VECTORS_FILE SP_TESTDATA "/keyslot_vectors.txt"

/* The generator writes several thousand keys; far fewer means the file
 * was truncated or the parser below skipped lines it should not have. */
#define VECTORS_MIN 4000

struct crc_case {
    const char *in;             /* input bytes */
    size_t len;                 /* length of in */
    uint16_t crc;               /* expected CRC16-XMODEM */
};

/* "123456789" is the standard check input for every CRC catalogue; the
 * others pin the table's first rows and the Redis source comment. */
static const struct crc_case crc_cases[] = {
    { "", 0, 0x0000 },
    { "123456789", 9, 0x31c3 },
    { "A", 1, 0x58e5 },
    { "\x00", 1, 0x0000 },
    { "\x01", 1, 0x1021 },
    { "\xff", 1, 0x1ef0 },
    { "\x00\x00", 2, 0x0000 },
};

START_TEST(test_crc16_known)
{
    const struct crc_case *c = &crc_cases[_i];

    ck_assert_uint_eq(crc16_xmodem(c->in, c->len), c->crc);
}
END_TEST

struct slot_case {
    const char *key;            /* key bytes */
    size_t len;                 /* length of key */
    uint16_t slot;              /* CLUSTER KEYSLOT from Redis 7.0 */
};

#define S(lit) lit, sizeof(lit) - 1

/* Slots checked against CLUSTER KEYSLOT; the comment says which bytes
 * Redis hashes. */
static const struct slot_case slot_cases[] = {
    { S(""), 0 },
    { S("foo"), 12182 },
    { S("bar"), 5061 },
    { S("123456789"), 12739 },              /* 0x31c3 & 0x3fff */
    { S("a"), 15495 },
    { S("{user1000}.following"), 3443 },    /* "user1000" */
    { S("{}a"), 10875 },                    /* empty tag: whole key */
    { S("{{a}}"), 10276 },                  /* "{a" */
    { S("{a"), 10276 },                     /* no '}': whole key */
    { S("a{b"), 13340 },                    /* no '}': whole key */
    { S("a}b{"), 6027 },                    /* '}' before '{': whole key */
    { S("{a}{b}"), 15495 },                 /* first tag only: "a" */
    { S("}{a}"), 15495 },                   /* "a" */
    { S("{"), 4092 },
    { S("}"), 12090 },
    { S("{}"), 15257 },
};

START_TEST(test_keyslot_known)
{
    const struct slot_case *c = &slot_cases[_i];

    ck_assert_msg(keyslot(c->key, c->len) == c->slot,
                  "keyslot(\"%s\") = %u, want %u", c->key,
                  (unsigned)keyslot(c->key, c->len), (unsigned)c->slot);
}
END_TEST

/* Pairs of keys that must land in the same slot because of the tag rule,
 * whatever that slot is. */
struct same_case {
    const char *a;
    size_t alen;
    const char *b;
    size_t blen;
};

static const struct same_case same_cases[] = {
    { S("{user}:1"), S("{user}:2") },
    { S("{user}:1"), S("user") },
    { S("x{user}y"), S("user") },
    { S("foo{bar}{zap}"), S("bar") },
    { S("foo{{bar}}zap"), S("{bar") },
    { S("foo{}{bar}"), S("foo{}{bar}") },
    { S("{\0}"), S("\0") },                 /* NUL inside a tag */
    { S("\0{\r\n}\0"), S("\r\n") },
    { S("{a}}"), S("a") },
    { S("}{}{a}"), S("}{}{a}") },
};

START_TEST(test_keyslot_same)
{
    const struct same_case *c = &same_cases[_i];

    ck_assert_uint_eq(keyslot(c->a, c->alen), keyslot(c->b, c->blen));
}
END_TEST

START_TEST(test_keyslot_untagged_is_crc)
{
    /* Without a usable tag the slot is the low 14 bits of the CRC. */
    static const char *const keys[] = { "foo", "{}", "{}x", "a{b", "}{" };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        size_t n = strlen(keys[i]);

        ck_assert_uint_eq(keyslot(keys[i], n),
                          crc16_xmodem(keys[i], n) & (SLOT_COUNT - 1));
    }
}
END_TEST

START_TEST(test_keyslot_tag_at_end_of_buffer)
{
    /* A '{' as the last byte of the buffer must not make keyslot read
     * past it: give it an exactly-sized heap copy so ASan would see. */
    char *k = malloc(3);

    ck_assert_ptr_nonnull(k);
    memcpy(k, "ab{", 3);
    ck_assert_uint_eq(keyslot(k, 3), crc16_xmodem("ab{", 3) & 0x3fff);
    /* The same bytes followed by a '}' that is not part of the key. */
    ck_assert_uint_eq(keyslot("ab{}", 3), keyslot("ab{", 3));
    ck_assert_uint_eq(keyslot("{x}", 2), crc16_xmodem("{x", 2) & 0x3fff);
    free(k);
}
END_TEST

/* The definition, byte at a time: what keyslot()'s two-bytes-per-step
 * loop must agree with. */
static uint16_t
ref_keyslot(const char *key, size_t len)
{
    for (size_t s = 0; s < len; s++) {
        if (key[s] != '{')
            continue;
        for (size_t e = s + 1; e < len; e++)
            if (key[e] == '}')
                return e > s + 1
                           ? crc16_xmodem(key + s + 1, e - s - 1) & 0x3fff
                           : crc16_xmodem(key, len) & 0x3fff;
        break;
    }
    return crc16_xmodem(key, len) & 0x3fff;
}

START_TEST(test_keyslot_random_vs_reference)
{
    /* Every length from 0 to 70, odd and even, with '{' and '}' at random
     * places (often, so that tags start on both byte positions of a step);
     * exactly-sized heap copies so ASan sees any over-read. */
    static const char alphabet[] = "{}ab\0\xff:{}";
    uint32_t seed = 12345;

    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(round % 71);
        char *k = malloc(len ? len : 1);

        ck_assert_ptr_nonnull(k);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            k[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
            if ((seed >> 8) % 4 != 0 && k[i] != '{' && k[i] != '}')
                k[i] = (char)('a' + (seed >> 20) % 26);
        }
        ck_assert_uint_eq(keyslot(k, len), ref_keyslot(k, len));
        free(k);
    }
}
END_TEST

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode hex[0 .. n) into out; returns the byte count or -1. */
static long
hex_decode(const char *hex, size_t n, unsigned char *out)
{
    if (n % 2 != 0)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval((unsigned char)hex[i]);
        int lo = hexval((unsigned char)hex[i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return (long)(n / 2);
}

START_TEST(test_keyslot_recorded_vectors)
{
    FILE *f = fopen(VECTORS_FILE, "r");
    char line[8192];
    unsigned char key[4096];
    unsigned lineno = 0, compared = 0, bad = 0;

    ck_assert_msg(f != NULL, "cannot open %s", VECTORS_FILE);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *sp, *end;
        long klen;
        unsigned long slot;

        lineno++;
        ck_assert_msg(strchr(line, '\n') != NULL,
                      "line %u too long", lineno);
        if (line[0] == '#' || line[0] == '\n')
            continue;
        sp = strchr(line, ' ');
        ck_assert_msg(sp != NULL, "line %u: no space", lineno);
        if (sp - line == 1 && line[0] == '-')
            klen = 0;
        else
            klen = hex_decode(line, (size_t)(sp - line), key);
        ck_assert_msg(klen >= 0, "line %u: bad hex", lineno);
        slot = strtoul(sp + 1, &end, 10);
        ck_assert_msg(end != sp + 1 && *end == '\n' && slot < SLOT_COUNT,
                      "line %u: bad slot", lineno);

        if (keyslot((const char *)key, (size_t)klen) != slot) {
            /* Keep going so one run lists every mismatch. */
            fprintf(stderr, "%s:%u: keyslot = %u, redis says %lu\n",
                    VECTORS_FILE, lineno,
                    (unsigned)keyslot((const char *)key, (size_t)klen), slot);
            bad++;
        }
        compared++;
    }
    fclose(f);
    ck_assert_msg(bad == 0, "%u of %u vectors differ", bad, compared);
    ck_assert_msg(compared >= VECTORS_MIN, "only %u vectors in %s",
                  compared, VECTORS_FILE);
}
END_TEST

static Suite *
keyslot_suite(void)
{
    Suite *s = suite_create("keyslot");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_crc16_known, 0,
                        (int)(sizeof(crc_cases) / sizeof(crc_cases[0])));
    tcase_add_loop_test(tc, test_keyslot_known, 0,
                        (int)(sizeof(slot_cases) / sizeof(slot_cases[0])));
    tcase_add_loop_test(tc, test_keyslot_same, 0,
                        (int)(sizeof(same_cases) / sizeof(same_cases[0])));
    tcase_add_test(tc, test_keyslot_untagged_is_crc);
    tcase_add_test(tc, test_keyslot_tag_at_end_of_buffer);
    tcase_add_test(tc, test_keyslot_recorded_vectors);
    tcase_add_test(tc, test_keyslot_random_vs_reference);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(keyslot_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
