/* slotproxy - BSD-2-Clause
 *
 * Unit tests for config.c: defaults, every option with its units, every
 * error message with its line and column, the three address forms, and
 * the shipped example conf/slotproxy.yml.
 */
#include "build_config.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "util.h"

#define MINIMAL \
    "listen:\n" \
    "  - 127.0.0.1:6380\n" \
    "cluster:\n" \
    "  seeds:\n" \
    "    - 127.0.0.1:7000\n"

/* A valid cluster section to append cluster options to (line 2 on). */
#define CLUSTER "cluster:\n  seeds: [127.0.0.1:7000]\n"

#define EXAMPLE SP_TESTDATA "/../../../conf/slotproxy.yml"

static struct config *
parse_ok(const char *text)
{
    struct config *c = NULL;
    char err[512] = "";
    int rc = config_parse_string(text, strlen(text), "t.yml", &c, err,
                                 sizeof(err));
    ck_assert_msg(rc == 0, "parse failed: %s\n--- input:\n%s", err, text);
    ck_assert_ptr_nonnull(c);
    return c;
}

static uint64_t
field_value(const struct config *c, size_t offset, size_t size)
{
    const char *p = (const char *)c + offset;
    if (size == sizeof(uint64_t)) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return v;
    }
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

/* ---- defaults ------------------------------------------------------ */

struct default_case {
    const char *name;
    size_t offset;
    size_t size;
    uint64_t want;
};

static const struct default_case default_cases[] = {
    { "workers", FIELD(workers), 1 },
    { "max_fanout_reply", FIELD(max_fanout_reply), 64ull << 20 },
    { "ndisabled", FIELD(ndisabled), 0 },
    { "log.level", FIELD(log_level), LOG_NOTICE },
    { "log.format", FIELD(log_format), LOG_FORMAT_TEXT },
    { "connect_timeout", FIELD(connect_timeout_ms), 1000 },
    { "request_timeout", FIELD(request_timeout_ms), 5000 },
    { "redirect_limit", FIELD(redirect_limit), 5 },
    { "refresh_interval", FIELD(refresh_interval_ms), 10000 },
    { "replica_poll_interval", FIELD(replica_poll_interval_ms), 1000 },
    { "connections_per_node", FIELD(node_connections), 1 },
    { "max_clients", FIELD(max_clients), 10000 },
    { "max_request_size", FIELD(max_request_size), 512ULL << 20 },
    { "max_multibulk_length", FIELD(max_multibulk), 1048576 },
    { "max_pipeline", FIELD(max_pipeline), 10000 },
    { "output_limit", FIELD(output_limit), 32ULL << 20 },
    { "max_memory", FIELD(max_memory), 64ULL << 20 },
    { "max_multi_size", FIELD(max_multi_size), 16ULL << 20 },
    { "max_multi_commands", FIELD(max_multi_commands), 100000 },
    { "idle_timeout", FIELD(idle_timeout_ms), 0 },
};

START_TEST(test_defaults)
{
    const struct default_case *t = &default_cases[_i];
    struct config *c = parse_ok(MINIMAL);
    struct config d;

    ck_assert_msg(field_value(c, t->offset, t->size) == t->want,
                  "%s: got %llu want %llu", t->name,
                  (unsigned long long)field_value(c, t->offset, t->size),
                  (unsigned long long)t->want);
    config_defaults(&d);
    ck_assert_msg(field_value(&d, t->offset, t->size) == t->want,
                  "config_defaults %s", t->name);
    config_free(c);
}
END_TEST

START_TEST(test_minimal_addresses)
{
    struct config *c = parse_ok(MINIMAL);
    ck_assert_str_eq(c->file, "t.yml");
    ck_assert_ptr_null(c->log_file);
    ck_assert_uint_eq(c->nlisten, 1);
    ck_assert_int_eq(c->listen[0].kind, ADDR_TCP);
    ck_assert_str_eq(c->listen[0].host, "127.0.0.1");
    ck_assert_uint_eq(c->listen[0].port, 6380);
    ck_assert_uint_eq(c->nseeds, 1);
    ck_assert_str_eq(c->seeds[0].host, "127.0.0.1");
    ck_assert_uint_eq(c->seeds[0].port, 7000);
    config_free(c);
}
END_TEST

START_TEST(test_default_listen)
{
    struct config *c = parse_ok(CLUSTER);
    ck_assert_uint_eq(c->nlisten, 1);
    ck_assert_int_eq(c->listen[0].kind, ADDR_TCP);
    ck_assert_str_eq(c->listen[0].host, "127.0.0.1");
    ck_assert_uint_eq(c->listen[0].port, 6380);
    config_free(c);
}
END_TEST

/* ---- every option, with units --------------------------------------- */

struct option_case {
    const char *yaml;
    size_t offset;
    size_t size;
    uint64_t want;
};

static const struct option_case option_cases[] = {
    { CLUSTER "workers: 4\n", FIELD(workers), 4 },
    { CLUSTER "clients:\n  max_fanout_reply: 2mb\n", FIELD(max_fanout_reply),
      2u << 20 },
    { CLUSTER "max_memory: 0\n", FIELD(max_memory), 0 },
    { CLUSTER "max_memory: 1gb\n", FIELD(max_memory), 1u << 30 },
    { CLUSTER "clients:\n  max_multi_size: 1mb\n", FIELD(max_multi_size),
      1u << 20 },
    { CLUSTER "clients:\n  max_multi_commands: 10\n",
      FIELD(max_multi_commands), 10 },
    { CLUSTER "disabled_commands: [KEYS, flushall, Script]\n",
      FIELD(ndisabled), 3 },
    { CLUSTER "disabled_commands: []\n", FIELD(ndisabled), 0 },
    { CLUSTER "workers: 1024\n", FIELD(workers), 1024 },
    { CLUSTER "log:\n  level: error\n", FIELD(log_level), LOG_ERROR },
    { CLUSTER "log:\n  level: warn\n", FIELD(log_level), LOG_WARN },
    { CLUSTER "log:\n  level: info\n", FIELD(log_level), LOG_INFO },
    { CLUSTER "log:\n  level: DEBUG\n", FIELD(log_level), LOG_DEBUG },
    { CLUSTER "log:\n", FIELD(log_level), LOG_NOTICE },
    { CLUSTER "log:\n  format: json\n", FIELD(log_format), LOG_FORMAT_JSON },
    { CLUSTER "log:\n  format: TEXT\n", FIELD(log_format), LOG_FORMAT_TEXT },
    { CLUSTER "  connect_timeout: 250\n", FIELD(connect_timeout_ms), 250 },
    { CLUSTER "  connect_timeout: 250ms\n", FIELD(connect_timeout_ms), 250 },
    { CLUSTER "  connect_timeout: 5s\n", FIELD(connect_timeout_ms), 5000 },
    { CLUSTER "  connect_timeout: 2m\n", FIELD(connect_timeout_ms), 120000 },
    { CLUSTER "  connect_timeout: 1h\n", FIELD(connect_timeout_ms), 3600000 },
    { CLUSTER "  connect_timeout: 3S\n", FIELD(connect_timeout_ms), 3000 },
    { CLUSTER "  connect_timeout: 1ms\n", FIELD(connect_timeout_ms), 1 },
    { CLUSTER "  connect_timeout: 24h\n", FIELD(connect_timeout_ms),
      86400000 },
    { CLUSTER "  request_timeout: \"750ms\"\n", FIELD(request_timeout_ms),
      750 },
    { CLUSTER "  redirect_limit: 0\n", FIELD(redirect_limit), 0 },
    { CLUSTER "  redirect_limit: 100\n", FIELD(redirect_limit), 100 },
    { CLUSTER "  refresh_interval: 30s\n", FIELD(refresh_interval_ms),
      30000 },
    { CLUSTER "  replica_poll_interval: 250ms\n",
      FIELD(replica_poll_interval_ms), 250 },
    { CLUSTER "  connections_per_node: 64\n", FIELD(node_connections), 64 },
    { CLUSTER "clients:\n  max_clients: 50000\n", FIELD(max_clients),
      50000 },
    { CLUSTER "clients:\n  max_request_size: 1kb\n",
      FIELD(max_request_size), 1024 },
    { CLUSTER "clients:\n  max_request_size: 64K\n",
      FIELD(max_request_size), 65536 },
    { CLUSTER "clients:\n  max_request_size: 2m\n",
      FIELD(max_request_size), 2ULL << 20 },
    { CLUSTER "clients:\n  max_request_size: 512MB\n",
      FIELD(max_request_size), 512ULL << 20 },
    { CLUSTER "clients:\n  max_request_size: 4gb\n",
      FIELD(max_request_size), 4ULL << 30 },
    { CLUSTER "clients:\n  max_request_size: 1g\n",
      FIELD(max_request_size), 1ULL << 30 },
    { CLUSTER "clients:\n  max_request_size: 2048\n",
      FIELD(max_request_size), 2048 },
    { CLUSTER "clients:\n  max_multibulk_length: 2147483647\n",
      FIELD(max_multibulk), 2147483647 },
    { CLUSTER "clients:\n  max_pipeline: 16\n", FIELD(max_pipeline), 16 },
    { CLUSTER "clients:\n  output_limit: 16gb\n", FIELD(output_limit),
      16ULL << 30 },
    { CLUSTER "clients:\n  idle_timeout: 5m\n", FIELD(idle_timeout_ms),
      300000 },
    { CLUSTER "clients:\n  idle_timeout: 0\n", FIELD(idle_timeout_ms), 0 },
    { CLUSTER "clients: {max_pipeline: 7}\n", FIELD(max_pipeline), 7 },
    { CLUSTER "auth:\n  password: p\n", FIELD(auth_max_failures), 10 },
    { CLUSTER "auth:\n  password: p\n  max_failures: 3\n",
      FIELD(auth_max_failures), 3 },
};

START_TEST(test_option)
{
    const struct option_case *t = &option_cases[_i];
    struct config *c = parse_ok(t->yaml);
    uint64_t got = field_value(c, t->offset, t->size);
    ck_assert_msg(got == t->want, "got %llu want %llu for:\n%s",
                  (unsigned long long)got, (unsigned long long)t->want,
                  t->yaml);
    config_free(c);
}
END_TEST

START_TEST(test_workers_auto)
{
    struct config *c = parse_ok(CLUSTER "workers: auto\n");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_int_eq(c->workers, n < 1 ? 1 : (n > 1024 ? 1024 : n));
    config_free(c);
}
END_TEST

START_TEST(test_log_file)
{
    struct config *c = parse_ok(CLUSTER "log:\n  file: /var/log/sp.log\n");
    ck_assert_str_eq(c->log_file, "/var/log/sp.log");
    config_free(c);
    c = parse_ok(CLUSTER "log:\n  file: stderr\n");
    ck_assert_ptr_null(c->log_file);
    config_free(c);
}
END_TEST

START_TEST(test_address_lists)
{
    struct config *c = parse_ok(
        "listen:\n"
        "  - 0.0.0.0:6380\n"
        "  - \"[::1]:6381\"\n"
        "  - unix:/run/slotproxy.sock\n"
        "cluster:\n"
        "  seeds:\n"
        "    - redis-0.example.internal:7000\n"
        "    - '[fd00::5]:7001'\n"
        "    - 10.0.0.3:7002\n");
    char buf[128];
    ck_assert_uint_eq(c->nlisten, 3);
    ck_assert_int_eq(c->listen[1].kind, ADDR_TCP);
    ck_assert_str_eq(c->listen[1].host, "::1");
    ck_assert_uint_eq(c->listen[1].port, 6381);
    ck_assert_int_eq(c->listen[2].kind, ADDR_UNIX);
    ck_assert_str_eq(c->listen[2].path, "/run/slotproxy.sock");
    ck_assert_uint_eq(c->nseeds, 3);
    ck_assert_str_eq(c->seeds[0].host, "redis-0.example.internal");
    config_addr_format(&c->seeds[1], buf, sizeof(buf));
    ck_assert_str_eq(buf, "[fd00::5]:7001");
    config_free(c);
}
END_TEST

/* ---- errors, with line and column ------------------------------------ */

struct error_case {
    const char *yaml;
    const char *want;
};

static const struct error_case error_cases[] = {
    /* auth.users[].backend_user/backend_password */
    { CLUSTER "auth:\n  users:\n    - {name: u, password: p, "
      "backend_user: acl}\n",
      "t.yml:5:7: user 'u': backend_user and backend_password go together" },
    { CLUSTER "auth:\n  users:\n    - {name: u, password: p, "
      "backend_password: x}\n",
      "t.yml:5:7: user 'u': backend_user and backend_password go together" },
    { CLUSTER "auth:\n  users:\n    - {name: u, password: p, "
      "backend_password: \"${SP_SURELY_UNSET}\", backend_user: a}\n",
      "t.yml:5:48: 'backend_password': environment variable "
      "'SP_SURELY_UNSET' is not set" },
    { CLUSTER "auth:\n  users:\n    - {name: u, password: p, "
      "backend_user: \"\", backend_password: x}\n",
      "t.yml:5:44: user fields must be non-empty strings" },
    { CLUSTER "auth:\n  max_failures: 0\n  password: p\n",
      "t.yml:4:17: 'max_failures' must be between 1 and 1000000" },
    /* disabled_commands */
    { CLUSTER "disabled_commands: [KEYS, NOPE]\n",
      "t.yml:3:27: unknown command 'NOPE' in 'disabled_commands'" },
    { CLUSTER "disabled_commands: KEYS\n",
      "t.yml:3:20: 'disabled_commands' must be a list of command names" },
    /* unknown keys */
    { "lisen:\n  - 127.0.0.1:6380\n" CLUSTER,
      "t.yml:1:1: unknown key 'lisen' at top level" },
    { "cluster:\n  seed: [127.0.0.1:7000]\n",
      "t.yml:2:3: unknown key 'seed' in 'cluster'" },
    { CLUSTER "log:\n  levle: info\n",
      "t.yml:4:3: unknown key 'levle' in 'log'" },
    { CLUSTER "clients:\n  max_client: 5\n",
      "t.yml:4:3: unknown key 'max_client' in 'clients'" },
    { CLUSTER "seeds: [127.0.0.1:7000]\n",
      "t.yml:3:1: unknown key 'seeds' at top level" },
    /* nested sections (monitor.hotkeys) */
    { CLUSTER "monitor:\n  hotkey:\n    sample: 4\n",
      "t.yml:4:3: unknown key 'hotkey' in 'monitor'" },
    { CLUSTER "monitor:\n  hotkeys:\n    sampel: 4\n",
      "t.yml:5:5: unknown key 'sampel' in 'monitor.hotkeys'" },
    { CLUSTER "monitor:\n  big_reply_bytes: -1\n",
      "t.yml:4:20: 'big_reply_bytes' must be between 0 and 64gb" },
    { CLUSTER "monitor:\n  big_reply_elemnts: 5\n",
      "t.yml:4:3: unknown key 'big_reply_elemnts' in 'monitor'" },
    { CLUSTER "monitor:\n  hotkeys: 4\n",
      "t.yml:4:12: 'monitor.hotkeys' must be a mapping of options" },
    { CLUSTER "monitor:\n  hotkeys:\n    k: 0\n",
      "t.yml:5:8: 'k' must be between 1 and 4096" },
    { CLUSTER "expiry_jitter:\n  percent: 101\n",
      "t.yml:4:12: 'percent' must be between 0 and 100" },
    /* duplicates */
    { CLUSTER "  redirect_limit: 1\n  redirect_limit: 2\n",
      "t.yml:4:3: duplicate key 'redirect_limit' in 'cluster'" },
    { CLUSTER "cluster:\n  redirect_limit: 1\n",
      "t.yml:3:1: duplicate key 'cluster' at top level" },
    { "workers: 1\nworkers: 2\n" CLUSTER,
      "t.yml:2:1: duplicate key 'workers' at top level" },
    /* wrong types */
    { CLUSTER "  redirect_limit: five\n",
      "t.yml:3:19: 'redirect_limit' must be an integer" },
    { CLUSTER "  redirect_limit: [1]\n",
      "t.yml:3:19: 'redirect_limit' must be an integer" },
    { CLUSTER "  redirect_limit: 1.5\n",
      "t.yml:3:19: 'redirect_limit' must be an integer" },
    { CLUSTER "  redirect_limit:\n",
      "t.yml:3:18: 'redirect_limit' must be an integer" },
    { CLUSTER "  connect_timeout: 5x\n",
      "t.yml:3:20: 'connect_timeout' must be a duration: milliseconds, or "
      "a number with ms, s, m or h (as 250ms, 5s)" },
    { CLUSTER "  connect_timeout: 2d\n",
      "t.yml:3:20: 'connect_timeout' must be a duration: milliseconds, or "
      "a number with ms, s, m or h (as 250ms, 5s)" },
    { CLUSTER "  connect_timeout: s\n",
      "t.yml:3:20: 'connect_timeout' must be a duration: milliseconds, or "
      "a number with ms, s, m or h (as 250ms, 5s)" },
    { CLUSTER "clients:\n  max_request_size: 1tb\n",
      "t.yml:4:21: 'max_request_size' must be a size: bytes, or a number "
      "with kb, mb or gb (as 64kb, 512mb)" },
    { CLUSTER "clients:\n  output_limit: 1.5mb\n",
      "t.yml:4:17: 'output_limit' must be a size: bytes, or a number "
      "with kb, mb or gb (as 64kb, 512mb)" },
    { CLUSTER "workers: many\n",
      "t.yml:3:10: 'workers' must be an integer or 'auto'" },
    { CLUSTER "log:\n  level: loud\n",
      "t.yml:4:10: 'level' must be one of error, warn, notice, info, debug" },
    { CLUSTER "log:\n  format: xml\n",
      "t.yml:4:11: 'format' must be text or json" },
    { CLUSTER "metrics:\n  readiness: most-slots\n",
      "t.yml:4:14: 'readiness' must be all-slots or any-slot" },
    { CLUSTER "log:\n  file: [a]\n",
      "t.yml:4:9: 'file' must be a path or 'stderr'" },
    { CLUSTER "log:\n  file: ''\n",
      "t.yml:4:9: 'file' must be a path or 'stderr'" },
    { CLUSTER "log: debug\n",
      "t.yml:3:6: 'log' must be a mapping of options" },
    { "cluster: [127.0.0.1:7000]\n",
      "t.yml:1:10: 'cluster' must be a mapping of options" },
    { "listen: 127.0.0.1:6380\n" CLUSTER,
      "t.yml:1:9: 'listen' must be a list of addresses" },
    { "listen: []\n" CLUSTER,
      "t.yml:1:9: 'listen' must list at least one address" },
    { "listen:\n  - {a: 1}\n" CLUSTER,
      "t.yml:2:5: 'listen' entries must be address strings (IPv6 "
      "addresses must be quoted, as \"[::1]:6380\")" },
    { "cluster:\n  seeds: 127.0.0.1:7000\n",
      "t.yml:2:10: 'seeds' must be a list of addresses" },
    { "keys:\n  ? [a]\n  : 1\n",
      "t.yml:1:1: unknown key 'keys' at top level" },
    { "? [a]\n: 1\n", "t.yml:1:3: keys must be plain strings" },
    /* out of range */
    { CLUSTER "  redirect_limit: 101\n",
      "t.yml:3:19: 'redirect_limit' must be between 0 and 100" },
    { CLUSTER "  redirect_limit: -1\n",
      "t.yml:3:19: 'redirect_limit' must be between 0 and 100" },
    { CLUSTER "  connect_timeout: 0\n",
      "t.yml:3:20: 'connect_timeout' must be between 1ms and 24h" },
    { CLUSTER "  request_timeout: 25h\n",
      "t.yml:3:20: 'request_timeout' must be between 1ms and 24h" },
    { CLUSTER "  refresh_interval: 50ms\n",
      "t.yml:3:21: 'refresh_interval' must be between 100ms and 24h" },
    { CLUSTER "  replica_poll_interval: 61s\n",
      "t.yml:3:26: 'replica_poll_interval' must be between 100ms and 1m" },
    { CLUSTER "  connect_timeout: 99999999999999999h\n",
      "t.yml:3:20: 'connect_timeout' must be between 1ms and 24h" },
    { CLUSTER "  connections_per_node: 0\n",
      "t.yml:3:25: 'connections_per_node' must be between 1 and 64" },
    { CLUSTER "  connections_per_node: 65\n",
      "t.yml:3:25: 'connections_per_node' must be between 1 and 64" },
    { CLUSTER "clients:\n  max_request_size: 512\n",
      "t.yml:4:21: 'max_request_size' must be between 1kb and 4gb" },
    { CLUSTER "clients:\n  max_request_size: 5gb\n",
      "t.yml:4:21: 'max_request_size' must be between 1kb and 4gb" },
    { CLUSTER "clients:\n  max_multibulk_length: 0\n",
      "t.yml:4:25: 'max_multibulk_length' must be between 1 and 2147483647" },
    { CLUSTER "clients:\n  max_clients: 0\n",
      "t.yml:4:16: 'max_clients' must be between 1 and 10000000" },
    { CLUSTER "clients:\n  max_pipeline: 0\n",
      "t.yml:4:17: 'max_pipeline' must be between 1 and 1000000" },
    { CLUSTER "clients:\n  output_limit: 100\n",
      "t.yml:4:17: 'output_limit' must be between 1kb and 64gb" },
    { CLUSTER "clients:\n  idle_timeout: 2d\n",
      "t.yml:4:17: 'idle_timeout' must be a duration: milliseconds, or "
      "a number with ms, s, m or h (as 250ms, 5s)" },
    { CLUSTER "clients:\n  idle_timeout: 86400001\n",
      "t.yml:4:17: 'idle_timeout' must be between 0 and 24h" },
    { CLUSTER "workers: 0\n",
      "t.yml:3:10: 'workers' must be between 1 and 1024" },
    /* addresses */
    { "listen:\n  - 127.0.0.1\n" CLUSTER,
      "t.yml:2:5: bad address '127.0.0.1': expected host:port, [ipv6]:port "
      "or unix:/path" },
    { "listen:\n  - 127.0.0.1:0\n" CLUSTER,
      "t.yml:2:5: bad address '127.0.0.1:0': port must be a number between "
      "1 and 65535" },
    { "listen:\n  - 127.0.0.1:65536\n" CLUSTER,
      "t.yml:2:5: bad address '127.0.0.1:65536': port must be a number "
      "between 1 and 65535" },
    { "cluster:\n  seeds:\n    - unix:/tmp/redis.sock\n",
      "t.yml:3:7: bad address 'unix:/tmp/redis.sock': unix sockets are not "
      "allowed here, expected host:port or [ipv6]:port" },
    { "cluster:\n  seeds: [10.0.0.1:7000, 10.0.0.2]\n",
      "t.yml:2:26: bad address '10.0.0.2': expected host:port or "
      "[ipv6]:port" },
    { "listen: ['::1:6380']\n" CLUSTER,
      "t.yml:1:10: bad address '::1:6380': IPv6 addresses must be in "
      "brackets, as [::1]:6379" },
    /* TLS options that need each other */
    { CLUSTER "tls:\n  listen: [127.0.0.1:6390]\n  cert: c.pem\n",
      "t.yml:4:11: tls: 'listen' needs 'cert' and 'key'" },
    { CLUSTER "tls:\n  listen: [127.0.0.1:6390]\n  cert: c.pem\n"
      "  key: k.pem\n  require_client_cert: true\n",
      "t.yml:7:24: tls: 'require_client_cert' needs 'ca' (the CA that signs "
      "client certificates)" },
    /* seeds */
    { "cluster:\n  seeds: []\n",
      "t.yml:2:10: cluster.seeds must list at least one seed node" },
    { "listen: [127.0.0.1:6380]\ncluster:\n  redirect_limit: 3\n",
      "t.yml:2:1: cluster.seeds must list at least one seed node" },
    { "listen: [127.0.0.1:6380]\n",
      "t.yml:1:1: cluster.seeds must list at least one seed node" },
    { "listen: [127.0.0.1:6380]\ncluster:\n",
      "t.yml:2:1: cluster.seeds must list at least one seed node" },
    /* document shape */
    { "", "t.yml:1:1: configuration is empty" },
    { "# nothing but a comment\n\n", "t.yml:1:1: configuration is empty" },
    { "- a\n- b\n", "t.yml:1:1: top level must be a mapping of options" },
    { "\nslotproxy\n", "t.yml:2:1: top level must be a mapping of options" },
    { CLUSTER "---\nworkers: 2\n",
      "t.yml:4:1: only one YAML document is allowed" },
    /* YAML syntax, with libyaml's own words */
    { "cluster:\n  seeds: [127.0.0.1:7000\n",
      "t.yml:3:1: did not find expected ',' or ']' (while parsing a flow "
      "sequence at 2:10)" },
    { "cluster:\n\tseeds: [127.0.0.1:7000]\n",
      "t.yml:2:1: found character that cannot start any token (while "
      "scanning for the next token at 2:1)" },
    { "cluster:\n  seeds: [a:1]\n redirect_limit: 3\n",
      "t.yml:3:2: did not find expected key (while parsing a block mapping "
      "at 1:1)" },
    { "workers: \"1\n", "t.yml:2:1: found unexpected end of "
      "stream (while scanning a quoted scalar at 1:10)" },
    { "listen:\n  - [::1]:6380\n" CLUSTER,
      "t.yml:2:6: did not find expected node content (IPv6 addresses must "
      "be quoted, as \"[::1]:6380\")" },
    { "listen: [[fd00::1]:6380]\n" CLUSTER,
      "t.yml:1:10: 'listen' entries must be address strings (IPv6 "
      "addresses must be quoted, as \"[::1]:6380\")" },
    { "listen: [[::1]:6380]\n" CLUSTER,
      "t.yml:1:11: did not find expected node content (IPv6 addresses must "
      "be quoted, as \"[::1]:6380\")" },
    { "workers: 1\n\xff\n", "t.yml:2:1: invalid leading UTF-8 octet" },
};

START_TEST(test_error)
{
    const struct error_case *t = &error_cases[_i];
    struct config *c = (struct config *)1;
    char err[512] = "";
    int rc = config_parse_string(t->yaml, strlen(t->yaml), "t.yml", &c, err,
                                 sizeof(err));
    ck_assert_msg(rc == -1, "expected failure for:\n%s", t->yaml);
    ck_assert_ptr_null(c);
    ck_assert_msg(strcmp(err, t->want) == 0,
                  "\n got: %s\nwant: %s\n--- input:\n%s", err, t->want,
                  t->yaml);
}
END_TEST

/* A tiny error buffer truncates but never overflows; NULL is allowed. */
START_TEST(test_error_buffer_small)
{
    struct config *c;
    char err[8];
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(config_parse_string("x: 1\n", 5, "t.yml", &c, err,
                                         sizeof(err)), -1);
    ck_assert_str_eq(err, "t.yml:1");
    ck_assert_int_eq(config_parse_string("x: 1\n", 5, "t.yml", &c, NULL, 0),
                     -1);
}
END_TEST

/* ---- addresses ------------------------------------------------------- */

struct addr_case {
    const char *in;
    int allow_unix;
    int kind;                   /* -1: expect an error */
    const char *host;           /* TCP host, UNIX path, or the error */
    unsigned port;
    const char *formatted;      /* config_addr_format, NULL = same as in */
};

static const struct addr_case addr_cases[] = {
    { "127.0.0.1:6380", 0, ADDR_TCP, "127.0.0.1", 6380, NULL },
    { "0.0.0.0:1", 1, ADDR_TCP, "0.0.0.0", 1, NULL },
    { "localhost:65535", 0, ADDR_TCP, "localhost", 65535, NULL },
    { "redis-1.svc.cluster.local:7000", 0, ADDR_TCP,
      "redis-1.svc.cluster.local", 7000, NULL },
    { "[::1]:6380", 0, ADDR_TCP, "::1", 6380, NULL },
    { "[fe80::1%eth0]:7000", 0, ADDR_TCP, "fe80::1%eth0", 7000, NULL },
    { "[2001:db8::7]:7001", 1, ADDR_TCP, "2001:db8::7", 7001, NULL },
    { "unix:/run/slotproxy.sock", 1, ADDR_UNIX, "/run/slotproxy.sock", 0,
      NULL },
    { "unix:relative.sock", 1, ADDR_UNIX, "relative.sock", 0, NULL },
    { "127.0.0.1", 1, -1,
      "bad address '127.0.0.1': expected host:port, [ipv6]:port or "
      "unix:/path", 0, NULL },
    { "", 0, -1,
      "bad address '': expected host:port or [ipv6]:port", 0, NULL },
    { ":6380", 0, -1,
      "bad address ':6380': expected host:port or [ipv6]:port", 0, NULL },
    { "host:", 0, -1,
      "bad address 'host:': port must be a number between 1 and 65535", 0,
      NULL },
    { "host:0", 0, -1,
      "bad address 'host:0': port must be a number between 1 and 65535", 0,
      NULL },
    { "host:65536", 0, -1,
      "bad address 'host:65536': port must be a number between 1 and "
      "65535", 0, NULL },
    { "host:+80", 0, -1,
      "bad address 'host:+80': port must be a number between 1 and 65535",
      0, NULL },
    { "host:http", 0, -1,
      "bad address 'host:http': port must be a number between 1 and 65535",
      0, NULL },
    { "::1:6380", 0, -1,
      "bad address '::1:6380': IPv6 addresses must be in brackets, as "
      "[::1]:6379", 0, NULL },
    { "[::1]6380", 0, -1,
      "bad address '[::1]6380': expected host:port or [ipv6]:port", 0,
      NULL },
    { "[::1:6380", 0, -1,
      "bad address '[::1:6380': expected host:port or [ipv6]:port", 0,
      NULL },
    { "[nope]:6380", 0, -1,
      "bad address '[nope]:6380': not a valid IPv6 address in brackets", 0,
      NULL },
    { "[]:6380", 0, -1,
      "bad address '[]:6380': not a valid IPv6 address in brackets", 0,
      NULL },
    { "256.1.1.1:6380", 0, -1,
      "bad address '256.1.1.1:6380': not a valid host name or IPv4 "
      "address", 0, NULL },
    { "bad host:6380", 0, -1,
      "bad address 'bad host:6380': not a valid host name or IPv4 address",
      0, NULL },
    { "unix:/tmp/x.sock", 0, -1,
      "bad address 'unix:/tmp/x.sock': unix sockets are not allowed here, "
      "expected host:port or [ipv6]:port", 0, NULL },
    { "unix:", 1, -1,
      "bad address 'unix:': expected host:port, [ipv6]:port or unix:/path",
      0, NULL },
};

START_TEST(test_addr)
{
    const struct addr_case *t = &addr_cases[_i];
    struct sp_addr a;
    char err[256] = "";
    char buf[256];
    int rc = config_parse_addr(t->in, t->allow_unix, &a, err, sizeof(err));

    if (t->kind < 0) {
        ck_assert_msg(rc == -1, "expected failure for '%s'", t->in);
        ck_assert_str_eq(err, t->host);
        ck_assert_ptr_null(a.host);
        ck_assert_ptr_null(a.path);
        return;
    }
    ck_assert_msg(rc == 0, "'%s': %s", t->in, err);
    ck_assert_int_eq(a.kind, t->kind);
    if (t->kind == ADDR_TCP) {
        ck_assert_str_eq(a.host, t->host);
        ck_assert_uint_eq(a.port, t->port);
    } else {
        ck_assert_str_eq(a.path, t->host);
    }
    config_addr_format(&a, buf, sizeof(buf));
    ck_assert_str_eq(buf, t->formatted ? t->formatted : t->in);
    config_addr_deinit(&a);
}
END_TEST

/* The long-path limit is sizeof(sun_path) - 1 (107 on Linux). */
START_TEST(test_addr_unix_too_long)
{
    char s[256] = "unix:/";
    struct sp_addr a;
    char err[512];
    memset(s + 6, 'a', 200);
    s[206] = '\0';
    ck_assert_int_eq(config_parse_addr(s, 1, &a, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "unix socket path is longer than"));
}
END_TEST

/* ---- files ----------------------------------------------------------- */

/* The shipped example sets every option, each to its default. */
START_TEST(test_example_file)
{
    struct config *c = NULL;
    struct config d;
    char err[512] = "";
    int rc = config_load_file(EXAMPLE, &c, err, sizeof(err));

    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(c->file, EXAMPLE);
    config_defaults(&d);
    for (size_t i = 0; i < sizeof(default_cases) / sizeof(default_cases[0]);
         i++) {
        const struct default_case *t = &default_cases[i];
        ck_assert_msg(field_value(c, t->offset, t->size) ==
                      field_value(&d, t->offset, t->size),
                      "example sets %s to a non-default value", t->name);
    }
    ck_assert_ptr_null(c->log_file);
    ck_assert_uint_eq(c->nlisten, 1);
    ck_assert_str_eq(c->listen[0].host, "127.0.0.1");
    ck_assert_uint_eq(c->listen[0].port, 6380);
    ck_assert_uint_eq(c->nseeds, 3);
    ck_assert_uint_eq(c->seeds[2].port, 7002);
    config_free(c);
}
END_TEST

START_TEST(test_file_error_names_path)
{
    const char *path = SP_TESTDATA "/config/bad.yml";
    struct config *c = NULL;
    char err[1024];
    char want[1024];

    ck_assert_int_eq(config_load_file(path, &c, err, sizeof(err)), -1);
    ck_assert_ptr_null(c);
    snprintf(want, sizeof(want),
             "%s:4:19: 'redirect_limit' must be an integer", path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_file_missing)
{
    const char *path = SP_TESTDATA "/config/does-not-exist.yml";
    struct config *c = NULL;
    char err[1024];
    char want[1024];

    ck_assert_int_eq(config_load_file(path, &c, err, sizeof(err)), -1);
    ck_assert_ptr_null(c);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_file_is_directory)
{
    struct config *c = NULL;
    char err[1024] = "";
    ck_assert_int_eq(config_load_file(SP_TESTDATA "/config", &c, err,
                                      sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "Is a directory"));
}
END_TEST


/* ---- auth: credential checks and reload re-checks --------------------- */

#define USERS \
    CLUSTER "auth:\n  users:\n" \
    "    - {name: ro, password: ropw, role: read-only}\n" \
    "    - {name: rw, password: rwpw}\n" \
    "    - {name: adm, password: admpw, role: admin}\n"

struct auth_case {
    const char *yaml;
    const char *user;
    const char *pass;
    int role;                   /* expected role, -1 refused */
    int uidx;                   /* expected user index */
};

static const struct auth_case auth_cases[] = {
    { USERS, "ro", "ropw", ROLE_READ_ONLY, 0 },
    { USERS, "rw", "rwpw", ROLE_READ_WRITE, 1 },
    { USERS, "adm", "admpw", ROLE_ADMIN, 2 },
    { USERS, "adm", "ropw", -1, -1 },       /* another user's password */
    { USERS, "ro", "ropw2", -1, -1 },
    { USERS, "ro", "rop", -1, -1 },
    { USERS, "RO", "ropw", -1, -1 },        /* user names are exact */
    { USERS, "r", "ropw", -1, -1 },
    { USERS, "", "", -1, -1 },
    { USERS, "default", "ropw", -1, -1 },
    { CLUSTER "auth:\n  password: pw\n", "default", "pw", ROLE_ADMIN, -1 },
    { CLUSTER "auth:\n  password: pw\n", "DEFAULT", "pw", ROLE_ADMIN, -1 },
    { CLUSTER "auth:\n  password: pw\n", "default", "PW", -1, -1 },
    { CLUSTER "auth:\n  password: pw\n", "other", "pw", -1, -1 },
};

START_TEST(test_auth_check)
{
    const struct auth_case *t = &auth_cases[_i];
    struct config *c = parse_ok(t->yaml);
    uint64_t fp = 42;
    int uidx = 42;
    ck_assert(auth_configured(c));
    int role = auth_check(c, t->user, strlen(t->user), t->pass,
                          strlen(t->pass), &fp, &uidx);
    ck_assert_int_eq(role, t->role);
    ck_assert_int_eq(uidx, t->uidx);
    ck_assert(role < 0 ? fp == 0 : fp != 0);
    config_free(c);
}
END_TEST

/* The fingerprint taken under one config, re-checked under the next. */
struct recheck_case {
    const char *user;
    const char *pass;
    const char *next;           /* the reloaded config */
    int role;                   /* expected role under next, -1 refused */
};

static const struct recheck_case recheck_cases[] = {
    { "rw", "rwpw", USERS, ROLE_READ_WRITE },
    { "rw", "rwpw", CLUSTER "auth:\n  users:\n"
      "    - {name: rw, password: rwpw, role: read-only}\n", ROLE_READ_ONLY },
    { "ro", "ropw", CLUSTER "auth:\n  users:\n"
      "    - {name: x, password: y}\n"
      "    - {name: ro, password: ropw, role: admin}\n", ROLE_ADMIN },
    { "rw", "rwpw", CLUSTER "auth:\n  users:\n"
      "    - {name: rw, password: changed}\n", -1 },
    { "rw", "rwpw", CLUSTER "auth:\n  users:\n"
      "    - {name: other, password: rwpw}\n", -1 },
    { "rw", "rwpw", CLUSTER "auth:\n  password: rwpw\n", -1 },
    { "default", "pw", CLUSTER "auth:\n  password: pw\n", ROLE_ADMIN },
    { "default", "pw", CLUSTER "auth:\n  password: pw2\n", -1 },
    { "default", "pw", CLUSTER "auth:\n  users:\n"
      "    - {name: default, password: pw, role: read-only}\n",
      ROLE_READ_ONLY },
};

START_TEST(test_auth_recheck)
{
    const struct recheck_case *t = &recheck_cases[_i];
    struct config *before = parse_ok(
        strcmp(t->user, "default") == 0
            ? CLUSTER "auth:\n  password: pw\n" : USERS);
    struct config *after = parse_ok(t->next);
    uint64_t fp;
    int uidx;
    ck_assert_int_ge(auth_check(before, t->user, strlen(t->user), t->pass,
                                strlen(t->pass), &fp, &uidx), 0);
    ck_assert_int_eq(auth_recheck(after, fp, &uidx), t->role);
    ck_assert_int_eq(auth_recheck(after, 0, &uidx), -1);
    config_free(before);
    config_free(after);
}
END_TEST

START_TEST(test_backend_user)
{
    setenv("SP_TEST_BACKEND_PW", "from-env", 1);
    struct config *c = parse_ok(
        CLUSTER "auth:\n  users:\n"
        "    - {name: a, password: p, backend_user: acl_a, "
        "backend_password: \"${SP_TEST_BACKEND_PW}\"}\n"
        "    - {name: b, password: q}\n");
    unsetenv("SP_TEST_BACKEND_PW");
    ck_assert_uint_eq(c->nusers, 2);
    ck_assert_str_eq(c->users[0].backend_user, "acl_a");
    ck_assert_str_eq(c->users[0].backend_password, "from-env");
    ck_assert_ptr_null(c->users[1].backend_user);
    ck_assert_ptr_null(c->users[1].backend_password);
    config_free(c);
}
END_TEST

START_TEST(test_auth_secret_eq)
{
    ck_assert(auth_secret_eq("abc", 3, "abc", 0));
    ck_assert(!auth_secret_eq("abc", 2, "abc", 0));
    ck_assert(!auth_secret_eq("abcd", 4, "abc", 0));
    ck_assert(!auth_secret_eq("abC", 3, "abc", 0));
    ck_assert(auth_secret_eq("abC", 3, "abc", 1));
    ck_assert(!auth_secret_eq("ab[", 3, "ab{", 1));
    ck_assert(!auth_secret_eq("a\0c", 3, "a", 0));
    ck_assert(auth_secret_eq("", 0, "", 0));
}
END_TEST

/* ---- reload: config_diff ------------------------------------------- */

/* Two configs and the one change config_diff must report between them
 * (name NULL: none). Values as config_get shows them. */
struct diff_case {
    const char *a;
    const char *b;
    const char *name;
    const char *old_value;
    const char *new_value;
    enum config_reload how;
};

#define SEEDS_A "cluster:\n  seeds: [127.0.0.1:7000]\n"

static const struct diff_case diff_cases[] = {
    /* Unchanged, however written. */
    { SEEDS_A, SEEDS_A, NULL, NULL, NULL, 0 },
    { SEEDS_A "  request_timeout: 5000\n", SEEDS_A "  request_timeout: 5s\n",
      NULL, NULL, NULL, 0 },
    { SEEDS_A "clients:\n  output_limit: 65536kb\n",
      SEEDS_A "clients:\n  output_limit: 64mb\n", NULL, NULL, NULL, 0 },
    { SEEDS_A "auth:\n  password: same\n", SEEDS_A "auth:\n  password: same\n",
      NULL, NULL, NULL, 0 },
    /* Each type, changed. */
    { SEEDS_A, "listen: [127.0.0.1:6390]\n" SEEDS_A, "listen",
      "[\"127.0.0.1:6380\"]", "[\"127.0.0.1:6390\"]", CONFIG_LIVE },
    { "listen: [127.0.0.1:6380, unix:/tmp/a]\n" SEEDS_A,
      "listen: [127.0.0.1:6380, unix:/tmp/b]\n" SEEDS_A, "listen",
      "[\"127.0.0.1:6380\", \"unix:/tmp/a\"]",
      "[\"127.0.0.1:6380\", \"unix:/tmp/b\"]", CONFIG_LIVE },
    { SEEDS_A, "cluster:\n  seeds: [127.0.0.1:7000, 127.0.0.1:7001]\n",
      "cluster.seeds", "[\"127.0.0.1:7000\"]",
      "[\"127.0.0.1:7000\", \"127.0.0.1:7001\"]", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "workers: 4\n", "workers", "1", "4", CONFIG_RESTART },
    { SEEDS_A, SEEDS_A "log:\n  level: debug\n", "log.level", "notice",
      "debug", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "log:\n  format: json\n", "log.format", "text",
      "json", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "log:\n  file: /tmp/x.log\n", "log.file", "stderr",
      "/tmp/x.log", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "  redirect_limit: 7\n", "cluster.redirect_limit",
      "5", "7", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "  connections_per_node: 4\n",
      "cluster.connections_per_node", "1", "4", CONFIG_RESTART },
    { SEEDS_A, SEEDS_A "  connect_timeout: 250ms\n", "cluster.connect_timeout",
      "1s", "250ms", CONFIG_NEW_CONNS },
    { SEEDS_A, SEEDS_A "clients:\n  max_request_size: 1mb\n",
      "clients.max_request_size", "512mb", "1mb", CONFIG_LIVE },
    { SEEDS_A "disabled_commands: [KEYS]\n",
      SEEDS_A "disabled_commands: [KEYS, FLUSHALL]\n", "disabled_commands",
      "[\"keys\"]", "[\"keys\", \"flushall\"]", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "  read_from: replica\n", "cluster.read_from",
      "master", "replica", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "backend_tls:\n  verify: false\n", "backend_tls.verify",
      "true", "false", CONFIG_NEW_CONNS },
    { SEEDS_A, SEEDS_A "metrics:\n  listen: [127.0.0.1:9121]\n",
      "metrics.listen", "[]", "[\"127.0.0.1:9121\"]", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "metrics:\n  readiness: any-slot\n",
      "metrics.readiness", "all-slots", "any-slot", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "slowlog:\n  max_len: 3\n", "slowlog.max_len", "128",
      "3", CONFIG_LIVE },
    /* Strings: unset, and compared in full. */
    { SEEDS_A, SEEDS_A "backend_tls:\n  ca: /etc/ca.pem\n", "backend_tls.ca",
      "(none)", "/etc/ca.pem", CONFIG_NEW_CONNS },
    { SEEDS_A "  username: app\n", SEEDS_A "  username: app2\n",
      "cluster.username", "app", "app2", CONFIG_NEW_CONNS },
    /* Secrets: reported as changed, never shown. */
    { SEEDS_A "  password: old\n", SEEDS_A "  password: new\n",
      "cluster.password", "***", "***", CONFIG_NEW_CONNS },
    { SEEDS_A, SEEDS_A "auth:\n  password: pw\n", "auth.password", "(none)",
      "***", CONFIG_LIVE },
    { SEEDS_A "auth:\n  users: [{name: u, password: a}]\n",
      SEEDS_A "auth:\n  users: [{name: u, password: b}]\n", "auth.users",
      "[{name: \"u\", password: \"***\", role: read-write}]",
      "[{name: \"u\", password: \"***\", role: read-write}]", CONFIG_LIVE },
    { SEEDS_A "auth:\n  users: [{name: u, password: a, backend_user: x, "
      "backend_password: y}]\n",
      SEEDS_A "auth:\n  users: [{name: u, password: a, backend_user: x, "
      "backend_password: z}]\n", "auth.users",
      "[{name: \"u\", password: \"***\", role: read-write, backend_user: "
      "\"x\", backend_password: \"***\"}]",
      "[{name: \"u\", password: \"***\", role: read-write, backend_user: "
      "\"x\", backend_password: \"***\"}]", CONFIG_LIVE },
    { SEEDS_A, SEEDS_A "auth:\n  max_failures: 3\n", "auth.max_failures",
      "10", "3", CONFIG_LIVE },
    { SEEDS_A "auth:\n  users: [{name: u, password: a}]\n",
      SEEDS_A "auth:\n  users: [{name: u, password: a, role: admin}]\n",
      "auth.users", "[{name: \"u\", password: \"***\", role: read-write}]",
      "[{name: \"u\", password: \"***\", role: admin}]", CONFIG_LIVE },
};

/* What config_diff reported. */
struct diff_seen {
    int n;
    char name[64];
    char old_value[256];
    char new_value[256];
    enum config_reload how;
};

static void
diff_record(void *arg, const char *name, const char *old_value,
            const char *new_value, enum config_reload how)
{
    struct diff_seen *s = arg;
    s->n++;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->old_value, sizeof(s->old_value), "%s", old_value);
    snprintf(s->new_value, sizeof(s->new_value), "%s", new_value);
    s->how = how;
}

START_TEST(test_diff)
{
    const struct diff_case *tc = &diff_cases[_i];
    struct config *a = parse_ok(tc->a), *b = parse_ok(tc->b);
    struct diff_seen seen = { 0 };
    size_t n = config_diff(a, b, diff_record, &seen);
    if (tc->name == NULL) {
        ck_assert_msg(n == 0 && seen.n == 0, "case %d: unexpected change "
                      "%s: %s -> %s", _i, seen.name, seen.old_value,
                      seen.new_value);
    } else {
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(seen.n, 1);
        ck_assert_str_eq(seen.name, tc->name);
        ck_assert_str_eq(seen.old_value, tc->old_value);
        ck_assert_str_eq(seen.new_value, tc->new_value);
        ck_assert_int_eq(seen.how, tc->how);
        /* Secrets never appear in a report. */
        ck_assert_ptr_null(strstr(seen.new_value, "new"));
        ck_assert_int_eq(config_changed(a, b, tc->name), 1);
        ck_assert_int_eq(config_changed(a, b, "nosuch.*"), 0);
    }
    config_free(a);
    config_free(b);
}
END_TEST

/* Options that need a restart keep what runs; the others take the file. */
START_TEST(test_keep_restart)
{
    struct config *a = parse_ok(SEEDS_A);
    struct config *b = parse_ok("workers: 3\ncluster:\n  seeds: [127.0.0.1:7000]\n"
                 "  connections_per_node: 2\n  request_timeout: 2s\n");
    config_keep_restart(b, a);
    ck_assert_int_eq(b->workers, 1);
    ck_assert_uint_eq(b->node_connections, 1);
    ck_assert_uint_eq(b->request_timeout_ms, 2000);
    ck_assert_int_eq(config_copy_option(b, a, "cluster.request_timeout"), 0);
    ck_assert_uint_eq(b->request_timeout_ms, 5000);
    ck_assert_int_eq(config_copy_option(b, a, "no.such"), -1);
    config_free(a);
    config_free(b);
}
END_TEST

/* ---- dump and get -------------------------------------------------- */

#define RICH \
    "listen: [127.0.0.1:6380, \"[::1]:6381\", unix:/tmp/sp.sock]\n" \
    "workers: 2\n" \
    "disabled_commands: [KEYS, FLUSHALL]\n" \
    "log:\n  level: info\n  file: \"/tmp/a b\\\"c.log\"\n" \
    "cluster:\n  seeds: [10.0.0.1:7000, \"[fe80::1%eth0]:7001\"]\n" \
    "  request_timeout: 1500\n  max_replica_lag: 3kb\n" \
    "  read_from: prefer-replica\n  username: u\n  password: secret1\n" \
    "metrics:\n  listen: [127.0.0.1:9121]\n" \
    "backend_tls:\n  enabled: true\n  server_name: redis.example\n" \
    "auth:\n  users:\n    - {name: a, password: secret2, role: admin}\n" \
    "    - {name: b, password: secret3, role: read-only,\n" \
    "       backend_user: ro, backend_password: secret4}\n" \
    "  max_failures: 4\n"

static char *
dump_of(const struct config *c)
{
    struct buf b;
    buf_init(&b);
    config_dump(c, &b);
    buf_append(&b, "", 1);
    char *s = strdup(b.data);
    buf_deinit(&b);
    return s;
}

/* dump, parse the dump, dump again: the same text; and the only options
 * that differ from the original are the passwords (shown as ***). */
START_TEST(test_dump_round_trip)
{
    const char *inputs[] = { RICH, MINIMAL };
    for (size_t k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
        struct config *a = parse_ok(inputs[k]);
        char *d1 = dump_of(a);
        struct config *b = parse_ok(d1);
        char *d2 = dump_of(b);
        ck_assert_str_eq(d1, d2);
        ck_assert_ptr_null(strstr(d1, "secret"));
        ck_assert(k > 0 || strstr(d1, "backend_user: \"ro\"") != NULL);
        struct diff_seen seen = { 0 };
        size_t n = config_diff(a, b, diff_record, &seen);
        ck_assert_uint_eq(n, k == 0 ? 2 : 0);  /* auth.users, then */
        if (k == 0)                             /* cluster.password */
            ck_assert_str_eq(seen.name, "cluster.password");
        free(d1);
        free(d2);
        config_free(a);
        config_free(b);
    }
}
END_TEST

/* c's monitor.hotkeys and expiry_jitter options, then c freed. */
static void
check_monitor(struct config *c, uint32_t sample, uint32_t k, uint32_t hide,
              uint32_t percent, uint32_t min_ttl_ms)
{
    ck_assert_uint_eq(c->hotkeys_sample, sample);
    ck_assert_uint_eq(c->hotkeys_k, k);
    ck_assert_uint_eq(c->hotkeys_hide_keys, hide);
    ck_assert_uint_eq(c->jitter_percent, percent);
    ck_assert_uint_eq(c->jitter_min_ttl_ms, min_ttl_ms);
    config_free(c);
}

/* Nested sections: monitor.hotkeys.* and expiry_jitter.*. */
START_TEST(test_monitor_options)
{
    check_monitor(parse_ok(MINIMAL), 64, 100, 0, 0, 60000);
    check_monitor(parse_ok(CLUSTER "monitor:\n  hotkeys:\n    sample: 0\n"
                           "    k: 7\n    hide_keys: yes\n"
                           "expiry_jitter: {percent: 10, min_ttl: 2m}\n"),
                  0, 7, 1, 10, 120000);
    config_free(parse_ok(CLUSTER "monitor:\n"));
}
END_TEST

/* monitor.big_*: defaults, values, 0 (off), next to monitor.hotkeys. */
START_TEST(test_monitor_big_options)
{
    struct config *c = parse_ok(MINIMAL);
    ck_assert_uint_eq(c->big_reply_bytes, 1024 * 1024);
    ck_assert_uint_eq(c->big_request_bytes, 1024 * 1024);
    ck_assert_uint_eq(c->big_reply_elements, 10000);
    config_free(c);
    c = parse_ok(CLUSTER "monitor:\n  big_reply_bytes: 64kb\n"
                 "  hotkeys:\n    sample: 8\n"
                 "  big_request_bytes: 0\n  big_reply_elements: 5\n");
    ck_assert_uint_eq(c->big_reply_bytes, 64 * 1024);
    ck_assert_uint_eq(c->big_request_bytes, 0);
    ck_assert_uint_eq(c->big_reply_elements, 5);
    ck_assert_uint_eq(c->hotkeys_sample, 8);
    config_free(c);
}
END_TEST

/* Every option of the table is in the dump, once. */
START_TEST(test_dump_every_option)
{
    struct config *c = parse_ok(MINIMAL);
    char *d = dump_of(c);
    ck_assert_ptr_nonnull(strstr(d, "\nworkers: 1\n"));
    ck_assert_ptr_nonnull(strstr(d, "\n  request_timeout: 5s\n"));
    ck_assert_ptr_nonnull(strstr(d, "\n  output_limit: 32mb\n"));
    ck_assert_ptr_nonnull(strstr(d, "\n  # cert: (not set)\n"));
    ck_assert_ptr_nonnull(strstr(d, "\n  listen: []\n"));
    ck_assert_ptr_nonnull(strstr(d, "\n  file: \"stderr\"\n"));
    /* "monitor" once, its own options before its "hotkeys" section (a
     * second "monitor:" key would not parse back). */
    ck_assert_ptr_nonnull(
        strstr(d, "\nmonitor:\n  big_reply_bytes: 1mb\n"
                  "  big_request_bytes: 1mb\n  big_reply_elements: 10000\n"
                  "  hotkeys:\n    sample: 64\n    k: 100\n"));
    ck_assert_ptr_null(strstr(strstr(d, "\nmonitor:\n") + 1, "\nmonitor:"));
    free(d);
    config_free(c);
}
END_TEST

struct get_seen {
    int n;
    char names[64][64];
    char values[64][256];
};

static void
get_record(void *arg, const char *name, const char *value)
{
    struct get_seen *s = arg;
    ck_assert_int_lt(s->n, 64);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
    snprintf(s->values[s->n], sizeof(s->values[0]), "%s", value);
    s->n++;
}

/* A pattern, how many options it matches, and the first one's value. */
struct get_case {
    const char *pattern;
    int count;
    const char *first;
    const char *value;
};

static const struct get_case get_cases[] = {
    { "cluster.request_timeout", 1, "cluster.request_timeout", "1500ms" },
    { "CLUSTER.REQUEST_TIMEOUT", 1, "cluster.request_timeout", "1500ms" },
    { "cluster.password", 1, "cluster.password", "***" },
    { "cluster.username", 1, "cluster.username", "u" },
    { "tls.cert", 1, "tls.cert", "" },
    { "workers", 1, "workers", "2" },
    { "log.file", 1, "log.file", "/tmp/a b\"c.log" },
    { "metrics.*", 2, "metrics.listen", "[\"127.0.0.1:9121\"]" },
    { "metrics.readiness", 1, "metrics.readiness", "all-slots" },
    { "cluster.*", 11, "cluster.seeds",
      "[\"10.0.0.1:7000\", \"[fe80::1%eth0]:7001\"]" },
    { "*timeout", 4, "cluster.connect_timeout", "1s" },
    { "cluster.?eeds", 1, "cluster.seeds", NULL },
    { "[lw]*", 5, "listen", NULL },
    { "[^a-z]*", 0, NULL, NULL },
    { "cluster.max_replica_la[f-h]", 1, "cluster.max_replica_lag", "3kb" },
    { "auth.users", 1, "auth.users",
      "[{name: \"a\", password: \"***\", role: admin}, "
      "{name: \"b\", password: \"***\", role: read-only, "
      "backend_user: \"ro\", backend_password: \"***\"}]" },
    { "auth.max_failures", 1, "auth.max_failures", "4" },
    { "nosuch", 0, NULL, NULL },
    { "***************************************************x", 0, NULL,
      NULL },
    { "cluster\\.seeds", 1, "cluster.seeds", NULL },
};

START_TEST(test_get)
{
    const struct get_case *tc = &get_cases[_i];
    struct config *c = parse_ok(RICH);
    struct get_seen seen = { 0 };
    const char *pats[] = { tc->pattern };
    size_t n = config_get(c, pats, 1, get_record, &seen);
    ck_assert_int_eq((int)n, tc->count);
    ck_assert_int_eq(seen.n, tc->count);
    if (tc->first != NULL)
        ck_assert_str_eq(seen.names[0], tc->first);
    if (tc->value != NULL)
        ck_assert_str_eq(seen.values[0], tc->value);
    config_free(c);
}
END_TEST

START_TEST(test_get_all_and_lines)
{
    struct config *c = parse_ok(RICH);
    struct get_seen seen = { 0 };
    size_t n = config_get(c, NULL, 0, get_record, &seen);
    ck_assert_uint_gt(n, 40);
    ck_assert_str_eq(seen.names[0], "listen");
    /* Two patterns: the union, in table order, each option once. */
    const char *pats[] = { "workers", "w*" };
    struct get_seen two = { 0 };
    ck_assert_uint_eq(config_get(c, pats, 2, get_record, &two), 1);
    ck_assert_uint_eq(config_line(c, "workers"), 2);
    ck_assert_uint_eq(config_line(c, "cluster.request_timeout"), 9);
    ck_assert_uint_eq(config_line(c, "clients.max_clients"), 0);
    ck_assert_uint_eq(c->listen[2].line, 1);
    config_free(c);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, test_defaults, 0,
                        sizeof(default_cases) / sizeof(default_cases[0]));
    tcase_add_test(tc, test_minimal_addresses);
    tcase_add_test(tc, test_default_listen);
    tcase_add_loop_test(tc, test_option, 0,
                        sizeof(option_cases) / sizeof(option_cases[0]));
    tcase_add_test(tc, test_workers_auto);
    tcase_add_test(tc, test_log_file);
    tcase_add_test(tc, test_address_lists);
    tcase_add_loop_test(tc, test_error, 0,
                        sizeof(error_cases) / sizeof(error_cases[0]));
    tcase_add_test(tc, test_error_buffer_small);
    suite_add_tcase(s, tc);

    tc = tcase_create("addr");
    tcase_add_loop_test(tc, test_addr, 0,
                        sizeof(addr_cases) / sizeof(addr_cases[0]));
    tcase_add_test(tc, test_addr_unix_too_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_test(tc, test_example_file);
    tcase_add_test(tc, test_file_error_names_path);
    tcase_add_test(tc, test_file_missing);
    tcase_add_test(tc, test_file_is_directory);
    suite_add_tcase(s, tc);

    tc = tcase_create("auth");
    tcase_add_loop_test(tc, test_auth_check, 0,
                        sizeof(auth_cases) / sizeof(auth_cases[0]));
    tcase_add_loop_test(tc, test_auth_recheck, 0,
                        sizeof(recheck_cases) / sizeof(recheck_cases[0]));
    tcase_add_test(tc, test_auth_secret_eq);
    tcase_add_test(tc, test_backend_user);
    suite_add_tcase(s, tc);

    tc = tcase_create("reload");
    tcase_add_loop_test(tc, test_diff, 0,
                        sizeof(diff_cases) / sizeof(diff_cases[0]));
    tcase_add_test(tc, test_keep_restart);
    suite_add_tcase(s, tc);

    tc = tcase_create("view");
    tcase_add_test(tc, test_dump_round_trip);
    tcase_add_test(tc, test_monitor_big_options);
    tcase_add_test(tc, test_dump_every_option);
    tcase_add_test(tc, test_monitor_options);
    tcase_add_loop_test(tc, test_get, 0,
                        sizeof(get_cases) / sizeof(get_cases[0]));
    tcase_add_test(tc, test_get_all_and_lines);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
