/** The {@code tally} command (train, memtable, bench): thin commands over the library, no math of its own. */
module dev.tally.cli {
    requires dev.tally.models;
    requires dev.tally.optim;
    requires info.picocli;
    requires me.tongfei.progressbar;
    requires org.knowm.xchart;
    requires java.desktop;    // xchart draws the PNG plots

    // picocli reads and writes the commands' annotated fields reflectively.
    opens dev.tally.cli to info.picocli;
}
