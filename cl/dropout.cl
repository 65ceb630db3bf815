/* cl/dropout.cl - being written. */
