/* btfspec guest agent, the fast path: the LOAD/SLEEP/PANIC loop of the shell agent (image.py) in one
 * process, so that a case costs no fork or exec (under TCG a busybox fork costs ~5-8 ms of a case).
 * Same protocol (see btfspec.oracle.kernels.guest); the shell agent answers PING, then execs this
 * program with the port on fd 3. Built static on the host when gcc and a static libc are there.
 *
 *   argv: <module name> <trace file>
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PORT 3

static char line[256];
static size_t have;
static char inbuf[1 << 16];
static size_t in_pos, in_len;

static int getbyte(void)
{
	if (in_pos == in_len) {
		ssize_t n = read(PORT, inbuf, sizeof(inbuf));
		if (n <= 0)
			return -1;
		in_pos = 0;
		in_len = (size_t)n;
	}
	return (unsigned char)inbuf[in_pos++];
}

static int read_line(void)
{
	int c;
	have = 0;
	while ((c = getbyte()) >= 0 && c != '\n')
		if (have < sizeof(line) - 1)
			line[have++] = (char)c;
	line[have] = 0;
	return c < 0 && !have ? -1 : 0;
}

static int read_exact(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = getbyte();
		if (c < 0)
			return -1;
		buf[i] = (char)c;
	}
	return 0;
}

static void put(const void *data, size_t n)
{
	const char *p = data;
	while (n) {
		ssize_t w = write(PORT, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* the whole file (a sysfs or tracefs file reports no size): malloc'd, length in *len; NULL if absent */
static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

static void clear_trace(const char *trace)
{
	int fd = open(trace, O_WRONLY | O_TRUNC);
	if (fd >= 0)
		close(fd);
}

/* the kernel log since the last clear, without the "<level>" prefixes (like busybox dmesg -c) */
static char *kernel_log(size_t *len)
{
	int size = klogctl(10, NULL, 0);
	if (size < 4096)
		size = 1 << 20;
	char *raw = malloc((size_t)size), *out = malloc((size_t)size);
	int n = klogctl(4, raw, size);
	size_t o = 0;
	for (int i = 0; i < n; i++) {
		if ((i == 0 || raw[i - 1] == '\n') && raw[i] == '<') {
			int j = i + 1;
			while (j < n && raw[j] >= '0' && raw[j] <= '9')
				j++;
			if (j < n && raw[j] == '>') {
				i = j;
				continue;
			}
		}
		out[o++] = raw[i];
	}
	free(raw);
	*len = o;
	return out;
}

static void load(size_t n, const char *mod, const char *trace)
{
	char *image = malloc(n ? n : 1), btf_path[128], head[128];
	if (read_exact(image, n) < 0)
		_exit(1);
	clear_trace(trace);
	int rc = 0;
	char err[256] = "";
	if (syscall(SYS_init_module, image, (unsigned long)n, "") != 0) {
		snprintf(err, sizeof(err), "insmod: can't insert 'case.ko': %s\n", strerror(errno));
		rc = 1;
	}
	free(image);
	snprintf(btf_path, sizeof(btf_path), "/sys/kernel/btf/%s", mod);
	size_t blen = 0;
	char *btf = rc ? NULL : slurp(btf_path, &blen);
	if (btf) {
		put("BTF\n", 4);
		put(btf, blen);
		free(btf);
		int gone = syscall(SYS_delete_module, mod, O_NONBLOCK) == 0;
		snprintf(head, sizeof(head), "END %d\n", gone ? 0 : 1);
		put(head, strlen(head));
		return;
	}
	if (!rc && syscall(SYS_delete_module, mod, O_NONBLOCK) != 0)
		snprintf(err, sizeof(err), "rmmod: can't unload '%s': %s\n", mod, strerror(errno));
	size_t klen = 0, tlen = 0;
	char *klog = kernel_log(&klen), *tr = slurp(trace, &tlen);
	snprintf(head, sizeof(head), "FAIL %d %zu %zu %zu\n", rc, strlen(err), klen, tr ? tlen : 0);
	put(head, strlen(head));
	put(err, strlen(err));
	put(klog, klen);
	if (tr)
		put(tr, tlen);
	free(klog);
	free(tr);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	while (read_line() == 0) {
		char *arg = strchr(line, ' ');
		if (arg)
			*arg++ = 0;
		if (!strcmp(line, "LOAD") && arg) {
			load(strtoul(arg, NULL, 10), argv[1], argv[2]);
		} else if (!strcmp(line, "SLEEP") && arg) {
			sleep((unsigned)atof(arg));
			put("DONE\n", 5);
		} else if (!strcmp(line, "PANIC")) {
			int fd = open("/proc/sysrq-trigger", O_WRONLY);
			if (fd >= 0 && write(fd, "c", 1) < 0)
				close(fd);
		} else if (have) {
			char msg[300];
			snprintf(msg, sizeof(msg), "ERROR unknown command %s\n", line);
			put(msg, strlen(msg));
		}
	}
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
