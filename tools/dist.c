/* tools/dist.c - see dist.h. Without MPI (configure found none) a process is alone. */

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "dist.h"

#ifdef HAVE_MPI
#include <mpi.h>

static int started;
static double *gathered; /* size x count: every rank's buffer */
static size_t gathered_cap;

static void abort_all(int code) {
  if (started) MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
}

/* A rank of a job: the launchers' variables (Open MPI, PMIx, MPICH's Hydra and PMI, Slurm's srun). */
static int launched(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "SLURM_STEP_ID"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

void dist_init(int *argc, char ***argv, struct dist *d) {
  memset(d, 0, sizeof *d);
  d->size = d->local_size = 1;
  if (!launched()) return;
  if (MPI_Init(argc, argv) != MPI_SUCCESS) die(1, "MPI_Init failed");
  started = 1;
  die_hook = abort_all;
  MPI_Comm_size(MPI_COMM_WORLD, &d->size);
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &d->local_size);
  MPI_Comm_rank(local, &d->local_rank);
  MPI_Comm_free(&local);
}

void dist_finish(void) {
  free(gathered);
  gathered = NULL, gathered_cap = 0;
  if (started) MPI_Finalize();
  started = 0;
  die_hook = NULL;
}

int dist_sum(double *buf, size_t count, void *user) {
  (void)user;
  int size = 1;
  if (!started || (MPI_Comm_size(MPI_COMM_WORLD, &size), size == 1)) return 0;
  if (count > (size_t)0x7fffffff) return MPI_ERR_COUNT;
  if (count * size > gathered_cap) {
    double *n = realloc(gathered, count * size * sizeof *n);
    if (!n) return MPI_ERR_NO_MEM;
    gathered = n, gathered_cap = count * size;
  }
  int e = MPI_Allgather(buf, (int)count, MPI_DOUBLE, gathered, (int)count, MPI_DOUBLE, MPI_COMM_WORLD);
  if (e != MPI_SUCCESS) return e;
  for (size_t i = 0; i < count; i++) {
    double s = gathered[i];
    for (int r = 1; r < size; r++) s += gathered[(size_t)r * count + i];
    buf[i] = s;
  }
  return 0;
}

int dist_any(int flag) {
  if (!started) return flag != 0;
  int in = flag != 0, out = in;
  MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

#else /* no MPI: one process */

void dist_init(int *argc, char ***argv, struct dist *d) {
  (void)argc, (void)argv;
  memset(d, 0, sizeof *d);
  d->size = d->local_size = 1;
}
void dist_finish(void) {}
int dist_sum(double *buf, size_t count, void *user) {
  (void)buf, (void)count, (void)user;
  return 0;
}
int dist_any(int flag) { return flag != 0; }
#endif
