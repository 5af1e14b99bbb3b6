package dev.tally.engine.io;

import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;

/**
 * File problems said the way a user can act on them: the file and the reason ("no such file", "is a directory",
 * "permission denied"), where the JDK's exceptions often carry only the path.
 */
public final class FileErrors {
    private FileErrors() {}

    /** Checks that {@code path} is a readable regular file; {@code what} says what it is for ("--resume checkpoint"). */
    public static void requireReadableFile(Path path, String what) throws IOException {
        if (Files.isDirectory(path)) throw new IOException(what + " " + path + ": is a directory, not a file");
        if (!Files.exists(path)) throw new IOException(what + " " + path + ": no such file");
        if (!Files.isRegularFile(path)) throw new IOException(what + " " + path + ": not a regular file");
        if (!Files.isReadable(path)) throw new IOException(what + " " + path + ": permission denied");
    }

    /** One line naming the file(s) and the reason, for any I/O failure. */
    public static String describe(IOException e) {
        if (!(e instanceof FileSystemException fse) || fse.getFile() == null) return reason(e);
        return fse.getFile() + (fse.getOtherFile() == null ? "" : " -> " + fse.getOtherFile()) + ": " + reason(e);
    }

    /** Why an I/O operation failed, without the file name: "no such file or directory", "permission denied", ... */
    public static String reason(IOException e) {
        return switch (e) {
            case NoSuchFileException x -> "no such file or directory";
            case AccessDeniedException x -> "permission denied";
            case NotDirectoryException x -> "not a directory";
            case FileAlreadyExistsException x -> "already exists";
            case DirectoryNotEmptyException x -> "directory not empty";
            case CharacterCodingException x -> "not UTF-8 text";
            case FileSystemException x when x.getReason() != null -> x.getReason();
            default -> e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
        };
    }
}
