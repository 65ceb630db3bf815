/* lib/optim.c - being written. */
