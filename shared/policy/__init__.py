"""Pure decisions: typed values in, verdicts with reasons and actions out. No I/O, no clock, no environment."""
