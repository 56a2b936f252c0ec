/* Guest test program: crashes the guest kernel through sysrq (a real panic). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	int fd;

	printf("TAP version 13\n1..1\n# about to crash the kernel\n");
	fflush(stdout);
	fd = open("/proc/sysrq-trigger", O_WRONLY);
	if (fd < 0 || write(fd, "c", 1) != 1)
		printf("not ok 1 could not trigger a crash\n");
	return 1;
}
