// Row and column gathers/scatters driven by integer ids. Ids past the table cannot throw here: they are recorded in
// the error word with the launch's `code` (the host's name for the call), which the host reads at its next
// synchronisation (see PendingIdChecks).
#include "tally.cuh"

// out [N…, D] as rows of D; table [V, D]
extern "C" __global__ void tally_embedding(const __grid_constant__ TDesc table, const __grid_constant__ TDesc ids, const __grid_constant__ TDesc out, long long* err, long long code) {
    int v = table.dims[0], d = table.dims[1];
    long long count = ids.numel;
    long long so = last_stride(out);
    GRID_STRIDE(k, count * d) {
        long long n = k / d;
        int j = (int) (k % d);
        long long id = ld_long(ids, offset_of(ids, n));
        float val = 0.f;
        if (id >= v) report_error(err, code, id);
        else if (id >= 0) val = ld(table, id * table.strides[0] + j * table.strides[1]);
        st(out, row_offset(out, n) + j * so, val);
    }
}

extern "C" __global__ void tally_scatter_add_rows(const __grid_constant__ TDesc ids, const __grid_constant__ TDesc src, const __grid_constant__ TDesc table, long long* err, long long code) {
    int v = table.dims[0], d = table.dims[1];
    long long count = ids.numel;
    long long ss = last_stride(src);
    GRID_STRIDE(k, count * d) {
        long long n = k / d;
        int j = (int) (k % d);
        long long id = ld_long(ids, offset_of(ids, n));
        if (id >= v) { report_error(err, code, id); continue; }
        if (id < 0) continue;
        atomic_add(table, id * table.strides[0] + j * table.strides[1], ld(src, row_offset(src, n) + j * ss));
    }
}

extern "C" __global__ void tally_gather_columns(const __grid_constant__ TDesc x, const __grid_constant__ TDesc ids, const __grid_constant__ TDesc out) {
    int c = x.dims[1];
    GRID_STRIDE(r, (long long) x.dims[0]) {
        long long id = ld_long(ids, r * ids.strides[0]);
        float v = (id >= 0 && id < c) ? ld(x, r * x.strides[0] + id * x.strides[1]) : 0.f;
        st(out, r * out.strides[0], v);
    }
}

// one thread per row: each touches its own row, so no atomics are needed
extern "C" __global__ void tally_scatter_add_columns(const __grid_constant__ TDesc ids, const __grid_constant__ TDesc src, const __grid_constant__ TDesc x) {
    int c = x.dims[1];
    GRID_STRIDE(r, (long long) x.dims[0]) {
        long long id = ld_long(ids, r * ids.strides[0]);
        if (id < 0 || id >= c) continue;
        long long o = r * x.strides[0] + id * x.strides[1];
        st(x, o, ld(x, o) + ld(src, r * src.strides[0]));
    }
}
