/** A library user: reads Tally's exported API and nothing else. */
module example.consumer {
    requires dev.tally.models;
    requires dev.tally.optim;
}
