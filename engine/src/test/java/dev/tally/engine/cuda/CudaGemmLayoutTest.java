package dev.tally.engine.cuda;

import dev.tally.engine.DType;
import dev.tally.engine.cuda.CudaGemm.Layout;
import dev.tally.engine.cuda.KernelArg.Desc;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.*;

/** How views map onto cuBLAS arguments and the kernel descriptor's bytes: pure host logic, runs everywhere. */
class CudaGemmLayoutTest {

    @Test void rowMajorIsOpNWithTheRowStrideAsLeadingDimension() {
        assertEquals(new Layout(false, 64), Layout.of(32, 64, 64, 1));
        assertEquals(new Layout(false, 100), Layout.of(32, 64, 100, 1)); // a column slice of a wider matrix
    }

    @Test void transposedViewIsOpTWithoutACopy() {
        // [k, m] contiguous, viewed as [m, k] with strides (1, m)
        assertEquals(new Layout(true, 32), Layout.of(32, 64, 1, 32));
    }

    @Test void sizeOneDimensionsAcceptAnyStride() {
        assertEquals(new Layout(false, 5), Layout.of(1, 5, 999, 1));
        assertEquals(new Layout(false, 1), Layout.of(7, 1, 1, 0));
    }

    @Test void noUnitStrideOrOverlappingRowsGoToTheFallbackKernel() {
        assertNull(Layout.of(4, 4, 8, 2));   // every other column
        assertNull(Layout.of(4, 4, 2, 1));   // rows overlap: no valid leading dimension
    }

    @Test void batchStrides() {
        assertEquals(12L, CudaGemm.batchStride(new int[]{2, 5, 3, 4}, new long[]{60, 12, 4, 1}, 2));
        assertEquals(0L, CudaGemm.batchStride(new int[]{2, 5, 3, 4}, new long[]{0, 0, 4, 1}, 2)); // broadcast
        assertEquals(12L, CudaGemm.batchStride(new int[]{1, 5, 3, 4}, new long[]{7, 12, 4, 1}, 2)); // size-1 dims ignored
        assertNull(CudaGemm.batchStride(new int[]{2, 5, 3, 4}, new long[]{0, 12, 4, 1}, 2)); // broadcast outer, real inner
        assertEquals(0L, CudaGemm.batchStride(new int[]{3, 4}, new long[]{4, 1}, 0)); // no batch dims
    }

    @Test void dtypesMapToCudaDataTypes() {
        assertEquals(0, CudaGemm.cudaType(DType.F32));
        assertEquals(14, CudaGemm.cudaType(DType.BF16));
        assertEquals(2, CudaGemm.cudaType(DType.F16));
        assertEquals(-1, CudaGemm.cudaType(DType.I32));
    }

    @Test void descriptorBytesMatchTheStructInTallyCuh() {
        Desc d = new Desc(0x1000, DType.BF16, new int[]{2, 3}, new long[]{3, 1});
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(Desc.SIZE, 8);
            d.writeTo(s);
            assertEquals(0x1000, s.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(DType.BF16.ordinal(), s.get(ValueLayout.JAVA_INT, 8));
            assertEquals(2, s.get(ValueLayout.JAVA_INT, 12));
            assertEquals(6, s.get(ValueLayout.JAVA_LONG, 16));
            assertEquals(3, s.get(ValueLayout.JAVA_INT, 28));
            assertEquals(1, s.get(ValueLayout.JAVA_INT, 32)); // unused dims are 1
            assertEquals(1, s.get(ValueLayout.JAVA_LONG, 64));
        }
        Desc t = d.transposed();
        assertArrayEquals(new int[]{3, 2}, t.dims());
        assertArrayEquals(new long[]{1, 3}, t.strides());
    }

    @Test void dtypeOrdinalsAreTheKernelsDtypeCodes() {
        // tally.cuh: DT_F32 = 0, DT_BF16 = 1, DT_F16 = 2, DT_I8 = 3, DT_U8 = 4, DT_I32 = 5, DT_I64 = 6
        assertArrayEquals(new DType[]{DType.F32, DType.BF16, DType.F16, DType.I8, DType.U8, DType.I32, DType.I64}, DType.values());
    }

    @Test void rankAboveEightIsRejectedWithTheShape() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new Desc(0, DType.F32, new int[9], new long[9]));
        assertTrue(e.getMessage().contains("rank <= 8"), e.getMessage());
    }

    @Test void elementwiseLaunchesCoalesceContiguousViewsToRankOne() {
        Desc a = Desc.contiguous(0, DType.F32, 4, 5, 6), b = Desc.contiguous(0, DType.BF16, 4, 5, 6);
        Desc[] c = Desc.coalesce(a, b);
        assertArrayEquals(new int[]{120}, c[0].dims());
        assertArrayEquals(new long[]{1}, c[1].strides());
        // a broadcast operand (stride 0 on dim 1) keeps that dimension apart; size-1 dims vanish
        Desc bc = new Desc(0, DType.F32, new int[]{4, 5, 6}, new long[]{6, 0, 1});
        Desc[] m = Desc.coalesce(bc, a);
        assertArrayEquals(new int[]{4, 5, 6}, m[0].dims());
        Desc one = new Desc(0, DType.F32, new int[]{1, 5, 1, 6}, new long[]{99, 6, 7, 1});
        assertArrayEquals(new int[]{30}, Desc.coalesce(one)[0].dims());
        // a transposed view does not merge
        Desc t = new Desc(0, DType.F32, new int[]{6, 4}, new long[]{1, 6});
        assertArrayEquals(new long[]{1, 6}, Desc.coalesce(t)[0].strides());
    }
}
