/** Tally autograd. */
package dev.tally.autograd;
