package dev.tally.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code tally} command: train, memtable, bench. Thin commands over the library — no math here. */
@Command(name = "tally", mixinStandardHelpOptions = true, version = "tally 0.1.0",
        description = "Memory-exact LLM training on the JVM.",
        subcommands = {TrainCommand.class, MemtableCommand.class, BenchCommand.class, EvalCommand.class, SampleCommand.class, ExportCommand.class, CompareCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Override public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static int run(String... args) {
        System.setProperty("java.awt.headless", "true");
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            // bad input: one clear line, no stack trace
            if (ex instanceof IllegalArgumentException || ex instanceof IllegalStateException || ex instanceof java.io.IOException) {
                cmd.getErr().println("tally: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        return cl.execute(args);
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }
}
