/* regular_file.c - opening a file that must be a regular file; see
 * regular_file.h. */
#include "core/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int orch_open_regular(const char *path, int64_t *size, int code, orch_err *err)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        orch_seterr(err, code, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        orch_seterr(err, code, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        orch_seterr(err, code, "%s: not a regular file (%s)", path,
                    S_ISFIFO(sb.st_mode)  ? "a FIFO"
                    : S_ISDIR(sb.st_mode) ? "a directory"
                    : S_ISCHR(sb.st_mode) ? "a character device"
                    : S_ISBLK(sb.st_mode) ? "a block device"
                                          : "a socket or other special file");
        close(fd);
        return -1;
    }
    /* back to blocking reads for the caller */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (size != NULL)
        *size = (int64_t)sb.st_size;
    return fd;
}
