package dev.tally.cli;

import dev.tally.engine.io.FileErrors;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.UncheckedIOException;

/** The {@code tally} command: train, memtable, fit, bench, eval, sample, export, compare. Thin commands over the library — no math here. */
@Command(name = "tally", mixinStandardHelpOptions = true, version = "tally 0.1.0",
        description = "Memory-exact LLM training on the JVM.",
        subcommands = {TrainCommand.class, MemtableCommand.class, FitCommand.class, BenchCommand.class, EvalCommand.class, SampleCommand.class,
                ExportCommand.class, CompareCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static int run(String... args) {
        return commandLine(new Main()).execute(args);
    }

    /** A command line for {@code command} that reports bad input as one line "tally: ..." and exit code 2. */
    static CommandLine commandLine(Object command) {
        System.setProperty("java.awt.headless", "true");
        CommandLine cl = new CommandLine(command);
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            // bad input: one clear line, no stack trace
            Exception e = ex instanceof UncheckedIOException u ? u.getCause() : ex;
            if (e instanceof IOException io) {
                cmd.getErr().println("tally: " + FileErrors.describe(io));
                return 2;
            }
            if (e instanceof IllegalArgumentException || e instanceof IllegalStateException) {
                cmd.getErr().println("tally: " + e.getMessage());
                return 2;
            }
            throw ex;
        });
        return cl;
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }
}
