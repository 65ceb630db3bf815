/* lib/concat.c - (to be written) */
