/*
 * testutil_sweep.h - running `orch sweep` from the CLI tests: alone, or
 * under mpirun with the fast settings of docs/testing.md ("Sweeps and
 * MPI"), every mpirun under a hard timeout and with its own session
 * directory; and reading back what a sweep recorded.
 *
 * Header-only (static functions): the test_cli_* programs link nothing but
 * tests/testutil.c and tests/testutil_sql.c.
 */
#ifndef ORCH_TESTUTIL_SWEEP_H
#define ORCH_TESTUTIL_SWEEP_H

#include <stdio.h>
#include <stdlib.h>

#include "tests/testutil.h"
#include "tests/testutil_sql.h"

#define SWEEP_UNUSED __attribute__((unused))

/* Open MPI's settings for tests, all by environment: root allowed,
 * oversubscription, no probing of fabrics, no binding (2 ranks on a loaded
 * machine), no CMA (containers). Under make asan, LeakSanitizer would
 * report what Open MPI itself keeps at MPI_Finalize (from plugins it has
 * unloaded by then, so no suppression can name them): leak detection is
 * off for ranks under mpirun; the same code alone is checked. */
#define SWEEP_MPI_ENV                                                                              \
    "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" "                              \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "                                   \
    "OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp "            \
    "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_hwloc_base_binding_policy=none "

/* 1 when mpirun can run here; else 0 after printing why the MPI part of
 * test is skipped. */
static SWEEP_UNUSED int sweep_have_mpirun(void)
{
    if (system("command -v mpirun >/dev/null 2>&1") == 0)
        return 1;
    print_message("skipped: mpirun is not installed (apt-get install openmpi-bin)\n");
    return 0;
}

/* Runs `orch --db DB sweep FILE` with ORCH_THREADS=1: alone when ranks is
 * 0, else under `mpirun -np RANKS` (a hard timeout, Open MPI's session
 * files in DIR/ompi). env: more "NAME=value" words for every rank, or NULL.
 * Returns run_shell's result. */
static SWEEP_UNUSED int sweep_run(const char *dir, const char *db, int ranks, const char *file,
                                  const char *env, cli_result *r)
{
    char cmd[4096];
    if (ranks == 0)
        snprintf(cmd, sizeof cmd, "env ORCH_THREADS=1 %s '%s' --db '%s' sweep '%s'", env ? env : "",
                 orch_bin(), db, file);
    else
        snprintf(
            cmd, sizeof cmd,
            "mkdir -p '%s/ompi' && env ORCH_THREADS=1 " SWEEP_MPI_ENV
            "OMPI_MCA_orte_tmpdir_base='%s/ompi' OMPI_MCA_btl_vader_backing_directory='%s/ompi' "
            "%s timeout -s KILL 170 mpirun --timeout 150 -np %d '%s' --db '%s' sweep '%s'",
            dir, dir, dir, env ? env : "", ranks, orch_bin(), db, file);
    return run_shell(cmd, r);
}

/* Every step of every run of db, one line each: "name step loss" with the
 * loss as SQLite's quote() writes a real (20 digits: its exact double; a
 * printf %.17g of SQLite stops at 16), by name and step.
 * malloc'd; "" for none. */
static SWEEP_UNUSED char *sweep_steps_text(const char *db)
{
    char *t = raw_text(db, "SELECT group_concat(line, char(10)) FROM (SELECT r.name || ' ' || "
                           "s.step || ' ' || quote(s.loss) AS line FROM runs r JOIN "
                           "steps s ON s.run_id = r.id ORDER BY r.name, s.step)");
    if (t == NULL) {
        t = malloc(1);
        if (t != NULL)
            t[0] = '\0';
    }
    return t;
}

/* "name status" of every run of db, by name, one per line. malloc'd. */
static SWEEP_UNUSED char *sweep_status_text(const char *db)
{
    return raw_text(db, "SELECT group_concat(line, char(10)) FROM (SELECT name || ' ' || status "
                        "AS line FROM runs ORDER BY name)");
}

#endif
