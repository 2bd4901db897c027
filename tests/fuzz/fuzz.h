/*
 * fuzz.h - the libFuzzer entry points every harness in tests/fuzz/
 * defines.  `make fuzz` links a harness with libFuzzer's main;
 * tests/fuzz/replay.c is the main that `make test` links it with instead,
 * to feed it every file of tests/fuzz/<name>/corpus.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Once, before the first input (libFuzzer: optional, called if defined). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Run one input (borrowed, @size bytes, not NUL-terminated); abort on a
 * broken promise.  Return: 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* FUZZ_H */
