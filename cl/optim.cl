/* cl/optim.cl - being written. */
