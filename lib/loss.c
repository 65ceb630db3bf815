/* lib/loss.c - (to be written) */
