/* cl/convtranspose.cl - (to be written) */
