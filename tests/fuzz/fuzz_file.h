/*
 * fuzz_file.h - for fuzz targets whose reader takes a path: one private
 * temporary directory per fuzzing process, and the input written into it.
 */
#ifndef ORCH_FUZZ_FILE_H
#define ORCH_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The process's temporary directory (made on first use under $TMPDIR,
 * else /dev/shm, else /tmp; removed at exit with everything in it). Aborts when it cannot be
 * made: a fuzz target that cannot write its input tests nothing. */
const char *fuzz_dir(void);

/* Writes data[0..size-1] to fuzz_dir()/name and returns that path (static
 * storage, valid until the next call). Aborts when the write fails. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);

#endif
