/* Guest test program: powers the machine off mid-run, so /init never ends its run. */
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

int main(void)
{
	printf("TAP version 13\n1..1\n# powering off under the runner's feet\n");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	printf("not ok 1 still running after reboot()\n");
	return 1;
}
