/* lib/batchnorm.c - being written. */
