/* slotproxy - BSD-2-Clause
 *
 * Leveled logging to stderr (or a file). Five levels. Never log on the
 * per-request path above debug: count it in metrics instead. Lines carry
 * an ISO-8601 UTC timestamp and the thread (main or worker) that wrote
 * them, as text or as one JSON object per line; when stderr is the
 * systemd journal (JOURNAL_STREAM names it), each line starts with the
 * journal's priority prefix instead of a timestamp, so that
 * `journalctl -p err` selects by level.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_NOTICE,
    LOG_INFO,
    LOG_DEBUG,
};

/* Line formats (log.format). */
enum log_format {
    LOG_FORMAT_TEXT = 0,    /* 2026-12-04T18:30:00.123Z [pid] w0 notice: msg */
    LOG_FORMAT_JSON,        /* one JSON object per line */
};

/* Returns the level for a name ("error".."debug"), or -1 if unknown. */
int log_level_from_name(const char *name);
const char *log_level_name(int level);
void log_set_level(int level);
int log_get_level(void);
/* Format by name ("text", "json"), -1 if unknown; and setting it. */
int log_format_from_name(const char *name);
void log_set_format(int format);
int log_get_format(void);
/* Name this thread in its log lines ("main", "w0", "w1" ...); at most 15
 * characters. */
void log_set_thread(const char *name);
/* Open a log file (append); NULL or "stderr" logs to stderr. 0 / -1. */
int log_open(const char *path);
/* The log's file descriptor, for the crash handler (async-signal-safe
 * writes only). */
int log_fd(void);
void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_write(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) \
    do { if (log_get_level() >= LOG_INFO) log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) \
    do { if (log_get_level() >= LOG_DEBUG) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
