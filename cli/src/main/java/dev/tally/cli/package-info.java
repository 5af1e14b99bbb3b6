/** Tally cli. */
package dev.tally.cli;
