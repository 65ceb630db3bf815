/* cl/loss.cl - (to be written) */
