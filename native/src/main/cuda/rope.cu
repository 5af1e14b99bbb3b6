// Rotary embedding, HF LLaMA rotate_half layout: x [..., T, H, Dh], pairs (i, i + Dh/2). Angles in fp64 like the CPU
// reference (positions reach thousands, where fp32 angles lose ~1e-4 rad).
#include "tally.cuh"

extern "C" __global__ void tally_rope(const __grid_constant__ TDesc x, const __grid_constant__ TDesc out, int position_offset, double base, int inverse, long long rows) {
    int dh = last_dim(x), half = dh / 2;
    int h = x.dims[x.rank - 2], t = x.dims[x.rank - 3];
    long long sx = last_stride(x), so = last_stride(out);
    double sign = inverse ? -1.0 : 1.0;
    GRID_STRIDE(k, rows * half) {
        long long r = k / half;
        int i = (int) (k % half);
        long long pos = (r / h) % t + position_offset;
        double angle = (double) pos * pow(base, -2.0 * i / dh);
        double s, c;
        // sincospi(angle/π): no general argument reduction, whose slow path needs a stack frame; the division costs
        // |angle|·2^-53 rad (< 1e-9 at a million positions), far below the fp32 outputs' resolution
        sincospi(angle * 0.31830988618379067154, &s, &c);
        s *= sign;
        long long xb = row_offset(x, r), ob = row_offset(out, r);
        double x1 = ld(x, xb + i * sx), x2 = ld(x, xb + (i + half) * sx);
        st(out, ob + i * so, (float) (x1 * c - x2 * s));
        st(out, ob + (i + half) * so, (float) (x2 * c + x1 * s));
    }
}
