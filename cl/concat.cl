/* cl/concat.cl - one input's slice of a concatenation along channels. The whole tensor is
 * (N, C, P) (P = H*W), the part (N, c, P) starts at channel coff; n = N*c*P elements of the part,
 * one work-item each. Forward copies part -> whole, backward whole's gradient -> part's. */

/* where element i of the part lies in the whole */
#define CONCAT_AT(i, c, cc, coff, p) ((size_t)((i) / ((c) * (p))) * (cc) + (coff)) * (p) + (i) % ((c) * (p))

__kernel void concat_forward(__global real *whole, __global const real *part, int n, int c, int cc, int coff,
                             int p) {
  int i = get_global_id(0);
  if (i < n) whole[CONCAT_AT(i, c, cc, coff, p)] = part[i];
}

__kernel void concat_backward(__global const real *whole, __global real *part, int n, int c, int cc, int coff,
                              int p) {
  int i = get_global_id(0);
  if (i < n) part[i] = whole[CONCAT_AT(i, c, cc, coff, p)];
}
