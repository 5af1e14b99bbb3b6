package dev.tally.models.data;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A read-only sequence of token ids: either held in memory (the small bundled corpus) or memory-mapped from a token
 * cache file, so a corpus of any size costs page cache, not heap. Ids are stored little-endian in the narrowest width
 * the tokenizer's vocabulary allows (1, 2 or 4 bytes).
 */
public sealed interface TokenStore permits TokenStore.InMemory, TokenStore.Mapped {
    long size();

    int get(long index);

    /** The storage width for a vocabulary: 1 byte up to 256 ids, 2 up to 65,536, else 4. */
    static int widthFor(int vocabSize) {
        return vocabSize <= 256 ? 1 : vocabSize <= 65536 ? 2 : 4;
    }

    record InMemory(int[] ids) implements TokenStore {
        @Override public long size() { return ids.length; }
        @Override public int get(long index) { return ids[Math.toIntExact(index)]; }
    }

    record Mapped(Path path, MemorySegment data, int width) implements TokenStore {
        static Mapped open(Path path, int width) throws IOException {
            try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
                long bytes = ch.size();
                if (bytes % width != 0) throw new IOException("token cache " + path + " has " + bytes + " bytes, not a multiple of " + width);
                // an automatic arena: the mapping lives as long as the store is reachable
                MemorySegment seg = bytes == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, bytes, Arena.ofAuto());
                return new Mapped(path, seg, width);
            }
        }

        @Override public long size() { return data.byteSize() / width; }

        @Override public int get(long index) {
            return switch (width) {
                case 1 -> data.get(ValueLayout.JAVA_BYTE, index) & 0xFF;
                case 2 -> data.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), index * 2) & 0xFFFF;
                default -> data.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), index * 4);
            };
        }
    }
}
