/* lib/data.c - being written. */
