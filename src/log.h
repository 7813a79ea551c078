/* slotproxy - BSD-2-Clause
 *
 * Leveled logging to stderr (or a file). Five levels. Never log on the
 * per-request path above debug: count it in metrics instead.
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

/* Returns the level for a name ("error".."debug"), or -1 if unknown. */
int log_level_from_name(const char *name);
const char *log_level_name(int level);
void log_set_level(int level);
int log_get_level(void);
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
