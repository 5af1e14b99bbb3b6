/** The tape of one training pass and the differentiable functions built on the engine's primitive ops. */
module dev.tally.autograd {
    requires transitive dev.tally.engine;

    exports dev.tally.autograd;
}
