/* cl/upsample.cl - (to be written) */
