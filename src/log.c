/* slotproxy - BSD-2-Clause
 *
 * Leveled logging: one line per event, with a wall-clock timestamp and the
 * level, to stderr or an append-only file.
 */
#include "build_config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Process-wide by nature (like stderr itself); written at startup and on
 * reload by the main thread only. */
static int log_level = LOG_NOTICE;
static FILE *log_fp;
/* Log lines are rare (never per request): a lock lets SIGHUP/SIGUSR1
 * reopen the file while workers log. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
    "error", "warn", "notice", "info", "debug",
};

int
log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *
log_level_name(int level)
{
    if (level < 0 || level > LOG_DEBUG)
        return "?";
    return level_names[level];
}

void
log_set_level(int level)
{
    __atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

int
log_get_level(void)
{
    return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int
log_open(const char *path)
{
    FILE *fp = NULL;
    if (path != NULL && strcmp(path, "stderr") != 0) {
        fp = fopen(path, "a");
        if (fp == NULL)
            return -1;
        setvbuf(fp, NULL, _IOLBF, 0);
    }
    pthread_mutex_lock(&log_lock);
    FILE *old = log_fp;
    log_fp = fp;
    pthread_mutex_unlock(&log_lock);
    if (old != NULL)
        fclose(old);
    return 0;
}

int
log_fd(void)
{
    return log_fp != NULL ? fileno(log_fp) : STDERR_FILENO;
}

void
log_write(int level, const char *fmt, ...)
{
    if (level > log_get_level())
        return;
    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03d [%d] %s: ",
                  (int)(tv.tv_usec / 1000), (int)getpid(),
                  log_level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    pthread_mutex_lock(&log_lock);
    fwrite(line, 1, (size_t)n, log_fp ? log_fp : stderr);
    pthread_mutex_unlock(&log_lock);
}
