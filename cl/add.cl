/* cl/add.cl - (to be written) */
