/*
 * regular_file.h - opening a file that must be a regular file.
 *
 * A data set, a checkpoint or a CSV named by a user may turn out to be a
 * FIFO (an open for reading blocks until a writer comes) or a device
 * (/dev/zero never ends). orch_open_regular opens with O_NONBLOCK, checks
 * with fstat before anything is read, then returns the descriptor in
 * blocking mode, so neither case can hang or exhaust memory.
 */
#ifndef ORCH_REGULAR_FILE_H
#define ORCH_REGULAR_FILE_H

#include <stdint.h>

#include "core/err.h"

/* Opens path for reading if it is a regular file; *size (may be NULL) gets
 * its size. Returns the descriptor (owned by the caller: close it), or -1
 * with err filled with code: "PATH: cannot open: REASON" or "PATH: not a
 * regular file (a FIFO)" (a directory, a character device, ...). */
int orch_open_regular(const char *path, int64_t *size, int code, orch_err *err);

#endif
