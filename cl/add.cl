/* cl/add.cl - y = a + b over n elements (a node's two inputs of the same shape). Backward is a
 * plain copy of dy to each input's gradient (util.cl's copy_add). */

__kernel void add_forward(__global real *y, __global const real *a, __global const real *b, int n) {
  int i = get_global_id(0);
  if (i < n) y[i] = a[i] + b[i];
}
