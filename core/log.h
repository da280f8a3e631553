/* log.h — leveled, timestamped logging to stderr.
 *
 * One line per call: "2026-11-26T16:40:01.123Z INFO  import: message". The
 * level threshold comes from rw_log_set_level() or the RW_LOG environment
 * variable (error, warn, info, debug). Thread-safe: each line is written
 * with one call.
 */
#ifndef RW_LOG_H
#define RW_LOG_H

#include <stdint.h>

typedef enum { RW_LOG_ERROR = 0, RW_LOG_WARN, RW_LOG_INFO, RW_LOG_DEBUG } rw_log_level_t;

void rw_log_set_level(rw_log_level_t level);
rw_log_level_t rw_log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int rw_log_parse_level(const char *name);
void rw_log(rw_log_level_t level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The monotonic clock, for durations and deadlines: seconds, milliseconds. */
double rw_now_s(void);
uint64_t rw_now_ms(void);

#define RW_ERROR(who, ...) rw_log(RW_LOG_ERROR, who, __VA_ARGS__)
#define RW_WARN(who, ...)  rw_log(RW_LOG_WARN, who, __VA_ARGS__)
#define RW_INFO(who, ...)  rw_log(RW_LOG_INFO, who, __VA_ARGS__)
#define RW_DEBUG(who, ...) rw_log(RW_LOG_DEBUG, who, __VA_ARGS__)

#endif
