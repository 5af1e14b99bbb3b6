/** Tally optimizers. */
package dev.tally.optim;
