/** Tally models. */
package dev.tally.models;
