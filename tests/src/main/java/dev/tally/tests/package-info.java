/** Tally tests. */
package dev.tally.tests;
