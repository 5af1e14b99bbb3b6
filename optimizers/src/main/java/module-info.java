/** AdamW, Adafactor, CAME, 8-bit AdamW, GaLore and APOLLO over parameter groups, with exactly booked state. */
module dev.tally.optim {
    requires transitive dev.tally.autograd;

    exports dev.tally.optim;
}
