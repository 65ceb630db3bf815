"""tests/clcnn_rng.py - clcnn's random numbers in Python, for the tests that redo a tool's draws:
splitmix64 (clcnn_rng_next, and the finaliser the kernels use), clcnn_shuffle's Fisher-Yates, and
the N(0, 1) noise of clcnn_net_forward_noise (cl/dropout.cl's normal_fill). Plain Python, no torch."""
import math

M = (1 << 64) - 1
GOLDEN = 0x9e3779b97f4a7c15


def mix64(z):
    """splitmix64's finaliser"""
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)


def splitmix(st):
    """clcnn_rng_next: (the new state, the number drawn)"""
    st = (st + GOLDEN) & M
    return st, mix64(st)


def shuffle(n, st):
    """clcnn_shuffle of 0..n-1 from state st"""
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        st, r = splitmix(st)
        j = (r * (i + 1)) >> 64
        order[i], order[j] = order[j], order[i]
    return order


def normal_fill(key, n):
    """the n numbers clcnn_net_forward_noise draws for key: Box-Muller on pairs of 24-bit uniforms"""
    y = []
    for i in range(0, n, 2):
        u1 = ((mix64((key + GOLDEN * (i + 1)) & M) >> 40) + 1) / 16777216.0
        u2 = (mix64((key + GOLDEN * (i + 2)) & M) >> 40) / 16777216.0
        r = math.sqrt(-2 * math.log(u1))
        y += [r * math.cos(6.283185307179586 * u2), r * math.sin(6.283185307179586 * u2)]
    return y[:n]
