/* slotproxy - BSD-2-Clause
 *
 * How many CPUs this process may actually use, for `workers: auto`: the
 * CPUs in its affinity mask (taskset, cpuset, Kubernetes static CPU
 * manager), further limited by a cgroup CPU quota (Kubernetes CPU limits,
 * docker --cpus), rounded up. Starting more workers than that only adds
 * contention and throttling.
 */
#ifndef SP_CPUS_H
#define SP_CPUS_H

/* CPUs usable by the process, at least 1, at most max. */
int cpus_usable(int max);

/* The CPUs a cgroup v2 "cpu.max" line ("max 100000", "150000 100000")
 * allows, rounded up; 0 when it sets no limit or does not parse. */
int cpus_parse_cpu_max(const char *line);

/* The same for cgroup v1's cpu.cfs_quota_us / cpu.cfs_period_us (quota
 * -1: no limit). */
int cpus_from_quota(long long quota_us, long long period_us);

#endif
