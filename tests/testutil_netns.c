/* testutil_netns.c - simulated hosts for the multi-host CLI tests; see
 * testutil_netns.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <unistd.h>

#include "tests/testutil_netns.h"

int netns_sh(cli_result *r, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof cmd);
    assert_int_equal(run_shell(cmd, r), 0);
    return r->exit_code;
}

/* 1 when the shell finds the program. */
static int have(const char *program)
{
    cli_result r;
    int code = netns_sh(&r, "command -v %s >/dev/null 2>&1", program);
    cli_result_free(&r);
    return code == 0;
}

int netns_cluster_setup(netns_cluster *c, const char *tag, int net_octet, int hosts, int slots)
{
    memset(c, 0, sizeof *c);
    if (make_temp_dir(c->dir, sizeof c->dir) == NULL || realpath("tests/mpi", c->scripts) == NULL ||
        realpath(orch_bin(), c->bin) == NULL)
        return -1;
    long pid = (long)getpid();
    snprintf(c->prefix, sizeof c->prefix, "%s%ld", tag, pid);
    /* 10.NET_OCTET.0.0/16 is free on the test hosts: nothing but the
     * namespaces themselves ever holds these addresses */
    snprintf(c->net, sizeof c->net, "10.%d.%ld", net_octet, pid % 250 + 1);
    snprintf(c->env, sizeof c->env,
             "MPISIM_PREFIX=%s MPISIM_NET=%s MPISIM_HOSTS=%d MPISIM_SLOTS=%d "
             "MPISIM_HOSTFILE='%s/hostfile'",
             c->prefix, c->net, hosts, slots, c->dir);
    if (geteuid() != 0) {
        snprintf(c->skip_reason, sizeof c->skip_reason, "not root: network namespaces need root");
        return 0;
    }
    const char *needed[] = {"ip", "unshare", "mpirun", "flock", "timeout"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!have(needed[i])) {
            snprintf(c->skip_reason, sizeof c->skip_reason, "no '%s' on this machine", needed[i]);
            return 0;
        }
    cli_result r;
    /* hosts left by an earlier run of a test with this tag that was killed
     * before its teardown (its pid is in the prefix and no longer alive) go
     * first */
    netns_sh(&r,
             "for p in $(ip netns list | sed -n 's/^%s\\([0-9][0-9]*\\)-.*/\\1/p' | sort -u); do "
             "kill -0 \"$p\" 2>/dev/null || MPISIM_PREFIX=%s$p timeout -s KILL 60 "
             "'%s/teardown-netns.sh' >/dev/null 2>&1; done; true",
             tag, tag, c->scripts);
    cli_result_free(&r);
    c->hosts_made = 1;
    int code = netns_sh(&r, "%s timeout -s KILL 60 '%s/setup-netns.sh'", c->env, c->scripts);
    if (code != 0) {
        /* namespaces refused (a container without CAP_SYS_ADMIN, no veth
         * support, ...): the reason is the script's last line */
        char *last = r.err;
        for (char *p = r.err; *p; p++)
            if (*p == '\n' && p[1] != '\0')
                last = p + 1;
        snprintf(c->skip_reason, sizeof c->skip_reason,
                 "simulated hosts cannot be made (exit %d): %.400s", code, last);
        c->skip_reason[strcspn(c->skip_reason, "\n")] = '\0';
    }
    cli_result_free(&r);
    if (code == 0) {
        /* a UTS namespace per host too (netns-exec.sh), checked here so a
         * kernel that refuses it skips rather than fails */
        code = netns_sh(&r, "%s timeout -s KILL 20 '%s/netns-exec.sh' %s-h1 hostname", c->env,
                        c->scripts, c->prefix);
        char want[64];
        snprintf(want, sizeof want, "%s-h1\n", c->prefix);
        if (code != 0 || strcmp(r.out, want) != 0)
            snprintf(c->skip_reason, sizeof c->skip_reason,
                     "cannot run a command on a simulated host (exit %d): %.300s", code, r.err);
        cli_result_free(&r);
    }
    return 0;
}

void netns_cluster_teardown(netns_cluster *c)
{
    if (c->hosts_made) {
        cli_result r;
        /* kills what is left in the namespaces (ranks, orted) and removes them */
        if (netns_sh(&r, "%s timeout -s KILL 60 '%s/teardown-netns.sh'", c->env, c->scripts) != 0)
            fprintf(stderr, "teardown-netns.sh failed: %s\n", r.err);
        cli_result_free(&r);
        c->hosts_made = 0;
    }
    if (c->dir[0] != '\0')
        remove_tree(c->dir);
    c->dir[0] = '\0';
}

void netns_mpirun(const netns_cluster *c, const char *name, int np, const char *const vars[],
                  const char *args)
{
    char assign[2048] = "", forward[1024] = "";
    size_t a = 0, f = 0;
    for (size_t i = 0; vars != NULL && vars[i] != NULL; i++) {
        const char *eq = strchr(vars[i], '=');
        assert_non_null(eq);
        assert_null(strchr(vars[i], '\''));
        int name_len = (int)(eq - vars[i]);
        a += (size_t)snprintf(assign + a, sizeof assign - a, "%.*s='%s' ", name_len, vars[i],
                              eq + 1);
        f += (size_t)snprintf(forward + f, sizeof forward - f, "-x %.*s ", name_len, vars[i]);
        assert_true(a < sizeof assign && f < sizeof forward);
    }
    char ompi[400];
    snprintf(ompi, sizeof ompi, "%s/ompi", c->dir);
    cli_result r;
    int code =
        netns_sh(&r,
                 "cd '%s' && mkdir -p '%s' && %s %s ORCH_THREADS=1 "
                 "LSAN_OPTIONS=\"${LSAN_OPTIONS:+$LSAN_OPTIONS:}detect_leaks=0\" "
                 "timeout -s KILL 200 '%s/netns-exec.sh' %s-h0 "
                 "timeout -s TERM -k 10 180 mpirun --allow-run-as-root --oversubscribe "
                 "--hostfile '%s/hostfile' -np %d --map-by node --bind-to none "
                 "--mca plm_rsh_agent '%s/rsh-netns.sh' --mca pml ob1 "
                 "--mca btl self,vader,tcp --mca btl_vader_single_copy_mechanism none "
                 "--mca btl_tcp_if_include %s.0/24 --mca oob_tcp_if_include %s.0/24 "
                 "--mca orte_tmpdir_base '%s' --mca btl_vader_backing_directory '%s' "
                 "%s -x ORCH_THREADS -x LSAN_OPTIONS '%s' %s >'%s/%s.out' 2>'%s/%s.err'",
                 c->dir, ompi, c->env, assign, c->scripts, c->prefix, c->dir, np, c->scripts,
                 c->net, c->net, ompi, ompi, forward, c->bin, args, c->dir, name, c->dir, name);
    cli_result_free(&r);
    if (code != 0) {
        /* the end of its stderr: the ranks' progress lines come first */
        char path[400], tail[2048];
        snprintf(path, sizeof path, "%s/%s.err", c->dir, name);
        char *err = read_whole_file(path, NULL);
        size_t n = err != NULL ? strlen(err) : 0;
        snprintf(tail, sizeof tail, "%s",
                 err == NULL ? "(no stderr)" : err + (n > 2000 ? n - 2000 : 0));
        free(err);
        fail_msg("mpirun -np %d of orch %s (%s) exited %d: ...%s", np, args, name, code, tail);
    }
}

long long netns_query_number(const char *db, const char *sql)
{
    const char *argv[] = {"query", sql, "--db", db, "--csv", NULL};
    const char *no_log[] = {"ORCH_STORE_OPEN_LOG=", NULL}; /* the test's own reads are not logged */
    cli_result r;
    assert_int_equal(run_orch(argv, no_log, &r), 0);
    if (r.exit_code != 0)
        fail_msg("orch query '%s' exited %d: %s", sql, r.exit_code, r.err);
    const char *row = strchr(r.out, '\n');
    assert_non_null(row);
    long long value = atoll(row + 1);
    cli_result_free(&r);
    return value;
}
