/* tools/dist.h - clcnn-train's processes: one, or the ranks of an MPI job (configure found MPI and
 * a launcher - mpirun, mpiexec, srun - started this process). */
#ifndef CLCNN_DIST_H
#define CLCNN_DIST_H
#include <stddef.h>

struct dist {
  int size, rank;             /* the job's processes and this one's rank (1 and 0 alone) */
  int local_size, local_rank; /* the same among the processes on this host */
};

/* Start MPI when this process is a rank of a job (its launcher's environment says so); alone, *d
 * is one process. Under MPI, die() then aborts every rank. */
void dist_init(int *argc, char ***argv, struct dist *d);
void dist_finish(void);
/* Sum buf[0..count) over the ranks, adding the ranks' values in rank order (an allgather and a
 * loop: MPI_Allreduce leaves the order open), so that every rank gets the same bits. A
 * clcnn_allreduce_fn (user unused); 0 or an MPI error code. */
int dist_sum(double *buf, size_t count, void *user);
/* Non-zero when FLAG is non-zero on any rank (flag itself alone). */
int dist_any(int flag);
#endif
