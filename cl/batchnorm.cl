/* cl/batchnorm.cl - being written. */
