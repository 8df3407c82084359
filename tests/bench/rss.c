/* mh-bench-rss: run a command and print its peak resident size.
 *
 *   mh-bench-rss CMD [ARG...]
 *
 * Prints "peak_rss_kib N exit S" on stderr (N: ru_maxrss of the child, S:
 * its exit status, or 128 + the signal); the command's own output passes
 * through.  `make bench` uses it for real pppd, which on a kernel without
 * PPP stops once it has read its options (and loaded its plugins).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: mh-bench-rss CMD [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "mh-bench-rss: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		fprintf(stderr, "mh-bench-rss: %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "mh-bench-rss: wait4: %s\n", strerror(errno));
			return 1;
		}
	fprintf(stderr, "peak_rss_kib %ld exit %d\n", ru.ru_maxrss,
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}
