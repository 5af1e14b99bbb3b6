package dev.tally.engine.cuda;

import dev.tally.engine.DType;
import dev.tally.engine.Device;
import dev.tally.engine.Tensor;
import dev.tally.engine.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.*;

/** The staging logic of host copies to and from strided device views, checked on CPU tensors (same index math). */
class HostSpanTest {

    @Test void gatherPacksAStridedViewAndScatterWritesOnlyItsElements() {
        try (Fixtures f = new Fixtures(Device.CPU); Arena host = Arena.ofConfined()) {
            Tensor base = f.random(DType.F32, 6, 8);
            Tensor view = base.slice(1, 2, 7).t().slice(0, 1, 4); // [3, 6] with strides (1, 8), offset 3
            HostSpan span = HostSpan.of(view);
            assertEquals(view.offset(), span.firstElement());
            assertEquals(1 + 2 + 5 * 8, span.elements());
            MemorySegment storage = view.segment();
            MemorySegment spanBytes = storage.asSlice(span.firstElement() * 4, span.bytes());

            MemorySegment packed = host.allocate(view.byteSize());
            span.gather(spanBytes, packed);
            double[] expect = view.toDoubleArray();
            for (int i = 0; i < expect.length; i++) assertEquals(expect[i], Tensor.HostCodec.read(packed, DType.F32, i), 0.0);

            double[] before = base.toDoubleArray();
            MemorySegment values = host.allocate(view.byteSize());
            for (int i = 0; i < expect.length; i++) Tensor.HostCodec.write(values, DType.F32, i, 100 + i);
            span.scatter(values, spanBytes); // written straight into the CPU storage here
            double[] after = view.toDoubleArray();
            for (int i = 0; i < after.length; i++) assertEquals(100 + i, after[i], 0.0);
            double[] all = base.toDoubleArray();
            int changed = 0;
            for (int i = 0; i < all.length; i++) if (all[i] != before[i]) changed++;
            assertEquals(expect.length, changed, "elements outside the view are untouched");
        }
    }
}
