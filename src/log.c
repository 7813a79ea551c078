/* slotproxy - BSD-2-Clause
 *
 * Leveled logging: one line per event, with an ISO-8601 UTC timestamp,
 * the thread and the level, as text or JSON, to stderr (the journal, with
 * priority prefixes, when systemd runs us) or an append-only file.
 */
#include "build_config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* Process-wide by nature (like stderr itself); written at startup and on
 * reload by the main thread only. */
static int log_level = LOG_NOTICE;
static int log_format = LOG_FORMAT_TEXT;
static FILE *log_fp;
/* stderr is the systemd journal: lines start with "<N>" (its priority)
 * and carry no timestamp (the journal keeps its own). */
static int log_journal;
/* Log lines are rare (never per request): a lock lets SIGHUP/SIGUSR1
 * reopen the file while workers log. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* The thread's name in its lines; empty means "main". */
static _Thread_local char log_thread[16];

static const char *const level_names[] = {
    "error", "warn", "notice", "info", "debug",
};

/* syslog priorities (sd-daemon.h's SD_ERR ... SD_DEBUG) by level. */
static const char journal_prio[] = { '3', '4', '5', '6', '7' };

static const char *const format_names[] = { "text", "json" };

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
log_format_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]);
         i++)
        if (strcasecmp(name, format_names[i]) == 0)
            return (int)i;
    return -1;
}

void
log_set_format(int format)
{
    __atomic_store_n(&log_format, format, __ATOMIC_RELAXED);
}

void
log_set_thread(const char *name)
{
    snprintf(log_thread, sizeof(log_thread), "%s", name);
}

/* 1 when stderr is the stream systemd gave us to the journal: the
 * JOURNAL_STREAM variable names its device and inode ("dev:ino"). */
static int
stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
        fstat(STDERR_FILENO, &st) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
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
    int journal = fp == NULL && stderr_is_journal();
    pthread_mutex_lock(&log_lock);
    FILE *old = log_fp;
    log_fp = fp;
    log_journal = journal;
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

/* Append s to out (capacity cap, length *n) as the body of a JSON
 * string: quotes, backslashes, control and non-ASCII bytes escaped, so
 * that a client-chosen name in a message cannot break the line. */
static void
json_escape(char *out, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s != '\0' && *n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[(*n)++] = '\\';
            out[(*n)++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(out + *n, "\\u00", 4);
            out[*n + 4] = hex[ch >> 4];
            out[*n + 5] = hex[ch & 15];
            *n += 6;
        } else {
            out[(*n)++] = (char)ch;
        }
    }
}

/* "2026-12-04T18:30:00.123Z" into ts (at least 32 bytes). */
static void
iso8601_utc(char *ts, size_t len)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* One line (with its newline) into line; returns its length. */
static size_t
log_format_line(char *line, size_t cap, int level, const char *msg)
{
    const char *thread = log_thread[0] ? log_thread : "main";
    int journal = __atomic_load_n(&log_journal, __ATOMIC_RELAXED);
    char ts[40];
    size_t n = 0;
    int m;

    iso8601_utc(ts, sizeof(ts));
    if (journal) {
        line[n++] = '<';
        line[n++] = journal_prio[level];
        line[n++] = '>';
    }
    if (log_get_format() == LOG_FORMAT_JSON) {
        m = snprintf(line + n, cap - n, "{\"time\":\"%s\",\"level\":\"%s\","
                     "\"pid\":%d,\"thread\":\"%s\",\"msg\":\"", ts,
                     log_level_name(level), (int)getpid(), thread);
        n += m > 0 ? (size_t)m : 0;
        json_escape(line, cap - 3, &n, msg);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        if (journal)
            m = snprintf(line + n, cap - n, "%s %s: %s", thread,
                         log_level_name(level), msg);
        else
            m = snprintf(line + n, cap - n, "%s [%d] %s %s: %s", ts,
                         (int)getpid(), thread, log_level_name(level), msg);
        n += m > 0 ? (size_t)m : 0;
        if (n > cap - 2)
            n = cap - 2;
    }
    line[n++] = '\n';
    return n;
}

int
log_get_format(void)
{
    return __atomic_load_n(&log_format, __ATOMIC_RELAXED);
}

void
log_write(int level, const char *fmt, ...)
{
    if (level > log_get_level())
        return;
    char msg[1024], line[2048 + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t n = log_format_line(line, sizeof(line), level, msg);
    pthread_mutex_lock(&log_lock);
    fwrite(line, 1, n, log_fp ? log_fp : stderr);
    pthread_mutex_unlock(&log_lock);
}
