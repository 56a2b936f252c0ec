/* Guest test program that does not compile: the suite must report the compiler error. */
#include <stdio.h>

int main(void)
{
	printf("never built\n")
	return undeclared_variable;
}
