/* lib/convtranspose.c - (to be written) */
