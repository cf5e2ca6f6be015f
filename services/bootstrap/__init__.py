"""The bootstrap service (spec §7): `POST /bootstrap` -> an Envoy v3 bootstrap for one Dataplane."""
