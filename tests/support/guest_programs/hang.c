/* Guest test program: starts its TAP, then never finishes. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("TAP version 13\n1..1\n# waiting forever\n");
	fflush(stdout);
	for (;;)
		pause();
}
