/*
 * Guest test program: real userfaultfd faults, resolved from a handler thread.
 *   1. MISSING fault on anonymous memory, resolved with UFFDIO_COPY.
 *   2. MINOR fault on shmem (memfd), resolved with UFFDIO_CONTINUE after the
 *      handler changed the page through a second mapping.
 * Prints TAP13; exits 0 on success, 4 (kselftest skip) without userfaultfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KSFT_SKIP 4

static long page_size;

struct fault_handler {
	int uffd;
	char *area;		/* the registered mapping */
	char *alias;		/* MINOR only: a second, unregistered mapping */
	int minor;
	int resolved;
};

static int uffd_open(__u64 features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static int resolve(struct fault_handler *h, unsigned long addr)
{
	if (h->minor) {
		struct uffdio_continue cont = { .range = { .start = addr, .len = page_size } };

		h->alias[addr - (unsigned long)h->area] = 'm';
		return ioctl(h->uffd, UFFDIO_CONTINUE, &cont);
	} else {
		struct uffdio_copy copy = { .dst = addr, .len = page_size };
		char *src = aligned_alloc(page_size, page_size);

		memset(src, 'u', page_size);
		copy.src = (unsigned long)src;
		return ioctl(h->uffd, UFFDIO_COPY, &copy);
	}
}

static void *handle_one_fault(void *arg)
{
	struct fault_handler *h = arg;
	struct pollfd pfd = { .fd = h->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, 10000) == 1 && read(h->uffd, &msg, sizeof(msg)) == sizeof(msg) &&
	    msg.event == UFFD_EVENT_PAGEFAULT &&
	    resolve(h, msg.arg.pagefault.address & ~(page_size - 1)) == 0)
		h->resolved = 1;
	if (!h->resolved) {
		/* Unregistering wakes the faulting thread, so a failure cannot hang it. */
		struct uffdio_range range = { .start = (unsigned long)h->area, .len = page_size };

		printf("# handler failed: %s\n", strerror(errno));
		ioctl(h->uffd, UFFDIO_UNREGISTER, &range);
	}
	return NULL;
}

/* Register area, touch it from this thread, let the handler thread resolve the fault. */
static int fault_and_check(struct fault_handler *h, __u64 mode, char expect_first, char expect_last)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)h->area, .len = page_size }, .mode = mode };
	pthread_t thread;
	char first, last;

	if (ioctl(h->uffd, UFFDIO_REGISTER, &reg)) {
		printf("# UFFDIO_REGISTER: %s\n", strerror(errno));
		return 0;
	}
	pthread_create(&thread, NULL, handle_one_fault, h);
	first = *(volatile char *)h->area;
	last = *(volatile char *)(h->area + page_size - 1);
	pthread_join(thread, NULL);
	if (first != expect_first || last != expect_last)
		printf("# read '%c'..'%c', expected '%c'..'%c'\n", first, last, expect_first, expect_last);
	return h->resolved && first == expect_first && last == expect_last;
}

static int test_missing_anon(void)
{
	struct fault_handler h = { .uffd = uffd_open(0) };

	h.area = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return h.uffd >= 0 && h.area != MAP_FAILED &&
	       fault_and_check(&h, UFFDIO_REGISTER_MODE_MISSING, 'u', 'u');
}

static int test_minor_shmem(void)
{
	struct fault_handler h = { .uffd = uffd_open(UFFD_FEATURE_MINOR_SHMEM), .minor = 1 };
	int fd = memfd_create("uffd-minor", 0);

	if (h.uffd < 0 || fd < 0 || ftruncate(fd, page_size))
		return 0;
	h.alias = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	h.area = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h.alias == MAP_FAILED || h.area == MAP_FAILED)
		return 0;
	memset(h.alias, 'b', page_size);	/* in the page cache, not yet mapped in area */
	return fault_and_check(&h, UFFDIO_REGISTER_MODE_MINOR, 'm', 'b');
}

int main(void)
{
	int probe, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page_size = sysconf(_SC_PAGESIZE);
	printf("TAP version 13\n1..2\n");
	probe = uffd_open(0);
	if (probe < 0) {
		printf("ok 1 missing_anon_copy # SKIP userfaultfd: %s\n", strerror(-probe));
		printf("ok 2 minor_shmem_continue # SKIP userfaultfd: %s\n", strerror(-probe));
		return KSFT_SKIP;
	}
	close(probe);
	if (!test_missing_anon())
		failed++, printf("not ok 1 missing_anon_copy\n");
	else
		printf("ok 1 missing_anon_copy\n");
	if (!test_minor_shmem())
		failed++, printf("not ok 2 minor_shmem_continue\n");
	else
		printf("ok 2 minor_shmem_continue\n");
	return failed ? 1 : 0;
}
