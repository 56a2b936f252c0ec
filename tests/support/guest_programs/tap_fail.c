/* Guest test program: its second test fails, kselftest style (exit 1). */
#include <stdio.h>

int main(void)
{
	printf("TAP version 13\n1..2\n");
	printf("ok 1 first_check\n");
	printf("# expected 4, got 5\n");
	printf("not ok 2 second_check\n");
	printf("# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0\n");
	return 1;
}
