/* lib/safetensors.c - being written. */
