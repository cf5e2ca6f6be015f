"""The ADS protocol (xDS v3, state of the world and delta) kept apart from the content: the
cache says what each node should have; the streams deliver it."""
