package dev.tally.models.data;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;

import java.nio.charset.StandardCharsets;

/** Text ↔ token ids. */
public sealed interface Tokenizer permits Tokenizer.Bytes, Tokenizer.Gpt2 {
    String name();

    int vocabSize();

    int[] encode(String text);

    String decode(int[] ids);

    /** Ids placed between two documents of a corpus (JSON-lines records, files of a folder). */
    int[] documentSeparator();

    static Tokenizer named(String name) {
        return switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "byte", "bytes" -> new Bytes();
            case "gpt2", "gpt-2", "bpe" -> new Gpt2();
            default -> throw new IllegalArgumentException("unknown tokenizer '" + name + "' (expected byte or gpt2)");
        };
    }

    /** UTF-8 bytes as tokens: vocabulary 256, lossless for any text. The default. */
    record Bytes() implements Tokenizer {
        @Override public String name() { return "byte"; }
        @Override public int vocabSize() { return 256; }
        /** A blank line: bytes have no end-of-text id. */
        @Override public int[] documentSeparator() { return new int[] {'\n', '\n'}; }

        @Override public int[] encode(String text) {
            byte[] b = text.getBytes(StandardCharsets.UTF_8);
            int[] ids = new int[b.length];
            for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xFF;
            return ids;
        }

        @Override public String decode(int[] ids) {
            byte[] b = new byte[ids.length];
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] < 0 || ids[i] > 255) throw new IllegalArgumentException("byte token " + ids[i] + " out of range");
                b[i] = (byte) ids[i];
            }
            return new String(b, StandardCharsets.UTF_8);
        }
    }

    /** GPT-2's byte-pair encoding (r50k_base, vocabulary 50257) through jtokkit. */
    final class Gpt2 implements Tokenizer {
        private final Encoding encoding = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);

        @Override public String name() { return "gpt2"; }
        @Override public int vocabSize() { return 50257; }
        /** GPT-2's {@code <|endoftext|>}, as GPT-2-tokenized C4 pipelines join documents. */
        @Override public int[] documentSeparator() { return new int[] {50256}; }
        @Override public int[] encode(String text) { return encoding.encodeOrdinary(text).toArray(); }

        @Override public String decode(int[] ids) {
            IntArrayList l = new IntArrayList(ids.length);
            for (int id : ids) l.add(id);
            return encoding.decode(l);
        }
    }
}
