/* cl/concat.cl - (to be written) */
