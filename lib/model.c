/* lib/model.c - being written. */
