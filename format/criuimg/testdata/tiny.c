/*
 * tiny: the process tree dumped into testdata/tiny by gen.sh. Kept small
 * so its pages images stay small: a static binary, a leader with a second
 * thread, an alive child, a zombie child, a pipe holding unread data
 * (pipes-data.img carries an extra payload) and an unlinked open file
 * (ghost-file-N.img carries its contents).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *thr(void *a)
{
	for (;;)
		pause();
	return a;
}

int main(int argc, char **argv)
{
	pthread_t t;
	int p[2], fd;

	if (argc < 2)
		return 2;
	if (pipe(p) || write(p[1], "pipe data", 9) != 9)
		return 1;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "ghost contents\n", 15) != 15 || unlink(argv[1]))
		return 1;
	if (fork() == 0)
		for (;;)
			pause();
	if (fork() == 0)
		_exit(7);
	if (pthread_create(&t, NULL, thr, NULL))
		return 1;
	write(1, "ready\n", 6);
	for (;;)
		pause();
}
