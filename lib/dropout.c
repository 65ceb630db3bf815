/* lib/dropout.c - being written. */
