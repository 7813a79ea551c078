/* slotproxy - BSD-2-Clause
 *
 * Usable CPU count; see cpus.h. Reads /proc and /sys only, at startup
 * and reload: never on the request path.
 */
#include "build_config.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"

int
cpus_from_quota(long long quota_us, long long period_us)
{
    if (quota_us <= 0 || period_us <= 0)
        return 0;
    return (int)((quota_us + period_us - 1) / period_us);
}

int
cpus_parse_cpu_max(const char *line)
{
    char quota[32];
    long long period;

    if (sscanf(line, "%31s %lld", quota, &period) != 2 ||
        strcmp(quota, "max") == 0)
        return 0;
    char *end;
    long long q = strtoll(quota, &end, 10);
    if (*end != '\0')
        return 0;
    return cpus_from_quota(q, period);
}

/* First line of a file into buf; 0 on success. */
static int
read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    return ok ? 0 : -1;
}

/* The smallest cgroup v2 limit on the way from our cgroup up to the
 * root (a parent's limit caps its children); 0 when none. */
static int
cgroup2_limit(void)
{
    char line[512], path[600], max[64];
    int best = 0;

    if (read_line("/proc/self/cgroup", line, sizeof(line)) != 0 ||
        strncmp(line, "0::", 3) != 0)
        return 0;
    char *rel = line + 3;
    rel[strcspn(rel, "\n")] = '\0';
    for (;;) {
        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max",
                 strcmp(rel, "/") == 0 ? "" : rel);
        if (read_line(path, max, sizeof(max)) == 0) {
            int n = cpus_parse_cpu_max(max);
            if (n > 0 && (best == 0 || n < best))
                best = n;
        }
        char *slash = strrchr(rel, '/');
        if (slash == NULL || slash == rel)
            break;
        *slash = '\0';
    }
    return best;
}

/* cgroup v1: the cpu controller mounted at /sys/fs/cgroup/cpu (inside a
 * container that is the container's own group). */
static int
cgroup1_limit(void)
{
    char q[32], p[32];
    if (read_line("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", q, sizeof(q)) ||
        read_line("/sys/fs/cgroup/cpu/cpu.cfs_period_us", p, sizeof(p)))
        return 0;
    return cpus_from_quota(atoll(q), atoll(p));
}

int
cpus_usable(int max)
{
    cpu_set_t set;
    long n = 0;

    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    int quota = cgroup2_limit();
    if (quota == 0)
        quota = cgroup1_limit();
    if (quota > 0 && quota < n)
        n = quota;
    if (n < 1)
        n = 1;
    return n > max ? max : (int)n;
}
