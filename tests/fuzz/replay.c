/*
 * replay.c - the main that `make test` links a fuzz harness with (no
 * libFuzzer): feed it every file of its corpus, one TAP line each.
 *
 * build/<variant>/tests/fuzz/t-fuzz-<name> replays tests/fuzz/<name>/corpus
 * (relative to the working directory: make test runs from the top of the
 * tree), or the directories and files given as arguments.  A harness that
 * finds a broken promise aborts, and prove reports the test as failed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define MAX_FILES 100000

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the file @path, or the files of directory @path, to @files. */
static void
collect(const char *path, char **files, size_t *n)
{
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (stat(path, &st)) {
		printf("Bail out! no corpus at %s\n", path);
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (*n == MAX_FILES || !(files[(*n)++] = strdup(path)))
			exit(1);
		return;
	}
	d = opendir(path);
	if (!d)
		exit(1);
	while ((e = readdir(d))) {
		char *f;

		if (e->d_name[0] == '.')
			continue;
		if (*n == MAX_FILES ||
		    !(f = malloc(strlen(path) + strlen(e->d_name) + 2)))
			exit(1);
		sprintf(f, "%s/%s", path, e->d_name);
		files[(*n)++] = f;
	}
	closedir(d);
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL, *grown;
	size_t cap = 0, got;

	*len = 0;
	if (!f)
		return NULL;
	do {
		if (*len == cap) {
			cap = cap ? 2 * cap : 4096;
			grown = realloc(buf, cap);
			if (!grown) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = grown;
		}
		got = fread(buf + *len, 1, cap - *len, f);
		*len += got;
	} while (got);
	fclose(f);
	return buf;
}

int
main(int argc, char **argv)
{
	static char *files[MAX_FILES];
	char dflt[256];
	const char *name = strrchr(argv[0], '/');
	size_t n = 0, i, len;
	int a;

	name = name ? name + 1 : argv[0];
	if (strncmp(name, "t-fuzz-", 7) == 0)
		name += 7;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		for (a = 1; a < argc; a++)
			collect(argv[a], files, &n);
	} else {
		snprintf(dflt, sizeof(dflt), "tests/fuzz/%s/corpus", name);
		collect(dflt, files, &n);
	}
	qsort(files, n, sizeof(files[0]), cmp_str);
	printf("1..%zu\n", n);
	LLVMFuzzerInitialize(&argc, &argv);
	for (i = 0; i < n; i++) {
		unsigned char *data = slurp(files[i], &len);

		if (!data) {
			printf("not ok %zu - %s: cannot read\n", i + 1,
			       files[i]);
			continue;
		}
		LLVMFuzzerTestOneInput(data, len);
		printf("ok %zu - %s\n", i + 1, files[i]);
		free(data);
		free(files[i]);
	}
	return 0;
}
