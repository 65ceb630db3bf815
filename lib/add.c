/* lib/add.c - (to be written) */
