/* lib/upsample.c - (to be written) */
